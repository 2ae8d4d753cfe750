import Foundation
import Hummingbird
import Journey
import Prometheus
import ServiceLifecycle

/// The routes of the journey API over one ``JourneyService``, plus `/health` and `/metrics`.
///
/// Every request is logged (swift-log) and counted (swift-metrics, which `/metrics` exposes from
/// `registry`). Refusals (`JourneyError`) become status codes in ``JourneyErrorMiddleware``, so
/// each handler reads as the call it makes.
func makeRouter(journey: JourneyService, registry: PrometheusCollectorRegistry) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: LogRequestsMiddleware(.info))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: JourneyErrorMiddleware())

    // Liveness and the database's reachability: 200 with the rules in force and the feed position.
    router.get("health") { _, _ in
        HealthJSON(status: "ok", rulesVersion: journey.rules.version, lastTransitionID: try await journey.lastTransitionID())
    }

    // Every swift-metrics instrument (the service's, the requests'), in Prometheus text format.
    router.get("metrics") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }

    // The stage and the checklist toward the next one, from the five-minute cache.
    router.get("users/:id/journey") { _, context in
        try await EvaluationReport(journey.journey(of: context.userID()), rules: journey.rules, persisted: false)
    }

    // Evaluate and store the moves; subscribers of /journey/events hear of them after commit.
    router.post("users/:id/journey/evaluate") { _, context in
        try await EvaluationReport(journey.evaluateAndPersist(user: context.userID()), rules: journey.rules, persisted: true)
    }

    // An explicit move, validated: a skip answers 409, unmet criteria 422.
    router.post("users/:id/journey/transitions") { request, context in
        let body = try await request.decode(as: TransitionRequest.self, context: context)
        let move = try await journey.requestTransition(user: context.userID(), to: StageID(body.to))
        return EditedResponse(status: .created, response: TransitionReport(move))
    }

    // Committed transitions by any process as server-sent events, until the client or the server
    // goes away. `Last-Event-ID` (or `?after=ID`) resumes after that id from the table; without
    // it the stream starts with the next commit.
    router.get("journey/events") { request, context in
        let lastEventID = request.headers.first { $0.name.canonicalName == "last-event-id" }?.value
        let resumeFrom = lastEventID ?? request.uri.queryParameters.get("after").map { String($0) }
        let after: Int64
        if let resumeFrom {
            guard let id = Int64(resumeFrom), id >= 0 else {
                throw HTTPError(.badRequest, message: "Last-Event-ID (or after) must be a transition id, not '\(resumeFrom)'.")
            }
            after = id
        } else {
            after = try await journey.lastTransitionID()
        }
        let moves = journey.transitions(after: after)
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": subscribed after \(after)\n\n"))
                try await request.body.consumeWithCancellationOnInboundClose { _ in
                    for try await move in moves.cancelOnGracefulShutdown() {
                        try await writer.write(ServerSentEvent(name: "transition", data: TransitionReport(move)).buffer)
                    }
                }
                try await writer.finish(nil)
            })
    }
    return router
}

extension BasicRequestContext {
    /// The `{id}` of the path as a user id; 400 when it is not an integer.
    func userID() throws -> Int64 {
        try parameters.require("id", as: Int64.self)
    }
}

/// `GET /health`.
struct HealthJSON: ResponseEncodable {
    let status: String
    let rulesVersion: String
    let lastTransitionID: Int64

    enum CodingKeys: String, CodingKey {
        case status, rulesVersion = "rules_version", lastTransitionID = "last_transition_id"
    }
}

/// ``JourneyService/run()`` as a service of the group: the feed, the cache's ears and rule
/// adoptions follow the database until graceful shutdown.
struct JourneyFollower: Service {
    let journey: JourneyService

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await journey.run() }
    }
}
