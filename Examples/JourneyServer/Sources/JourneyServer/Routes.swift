import Hummingbird
import Journey
import JourneyCore
import ServiceLifecycle

/// The three routes of the journey API over one ``JourneyService``.
///
/// Refusals (`JourneyError`) become status codes in ``JourneyErrorMiddleware``, so each
/// handler reads as the call it makes.
func makeRouter(journey: JourneyService) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: JourneyErrorMiddleware())

    // The stage and the checklist toward the next one, from the five-minute cache.
    router.get("users/:id/journey") { _, context in
        try await JourneyJSON(journey.journey(of: context.userID()), rules: journey.rules)
    }

    // Evaluate and store the moves; subscribers of /journey/events hear of them after commit.
    router.post("users/:id/journey/evaluate") { _, context in
        try await JourneyJSON(journey.evaluateAndPersist(user: context.userID()), rules: journey.rules)
    }

    // An explicit move, validated: a skip answers 409, unmet criteria 422.
    router.post("users/:id/journey/transitions") { request, context in
        let body = try await request.decode(as: TransitionRequest.self, context: context)
        let move = try await journey.requestTransition(user: context.userID(), to: StageID(body.to))
        return EditedResponse(status: .created, response: TransitionJSON(move))
    }

    // Committed transitions as server-sent events, until the client or the server goes away.
    router.get("journey/events") { request, _ in
        let moves = journey.transitionUpdates()  // subscribed before the response starts
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: ": subscribed\n\n"))
            try await request.body.consumeWithCancellationOnInboundClose { _ in
                for await move in moves.cancelOnGracefulShutdown() {
                    try await writer.write(ServerSentEvent(name: "transition", data: TransitionJSON(move)).buffer)
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
