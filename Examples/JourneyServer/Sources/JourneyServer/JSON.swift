import Foundation
import Hummingbird
import Journey
import JourneyCore
import JourneySQLite

/// The body of `POST /users/{id}/journey/transitions`: `{"to": "J3_POWER_USER"}`.
struct TransitionRequest: Decodable {
    let to: String
}

/// One user's journey as the API answers it.
///
/// `stored_stage` is what the database holds after the request; `pending_transitions` are the
/// moves an evaluate would record now; `recorded` are the rows this request wrote.
struct JourneyJSON: ResponseEncodable {
    struct Move: Encodable {
        let from: String, to: String, kind: String, reason: String
    }

    struct Next: Encodable {
        let stage: String, title: String, met: Bool
        let criteria: [CheckJSON]
    }

    struct PinJSON: Encodable {
        let stage: String, reason: String, since: String
    }

    let user: Int64
    let stage: String
    let title: String
    let storedStage: String
    let pendingTransitions: [Move]
    let recorded: [TransitionJSON]
    let next: Next?
    let pin: PinJSON?

    enum CodingKeys: String, CodingKey {
        case user, stage, title, storedStage = "stored_stage", pendingTransitions = "pending_transitions"
        case recorded, next, pin
    }

    init(_ journey: UserJourney, rules: RuleSet) {
        let evaluation = journey.evaluation
        user = journey.userID
        stage = evaluation.stage.rawValue
        title = rules.stage(evaluation.stage)?.title ?? ""
        storedStage = journey.recorded.last?.to.rawValue ?? journey.storedStage
        pendingTransitions = journey.recorded.isEmpty
            ? evaluation.transitions.map { Move(from: $0.from.rawValue, to: $0.to.rawValue, kind: $0.kind.rawValue, reason: $0.reason) }
            : []
        recorded = journey.recorded.map(TransitionJSON.init)
        next = evaluation.next.map { checklist in
            Next(stage: checklist.to.rawValue, title: rules.stage(checklist.to)?.title ?? "", met: checklist.isMet,
                 criteria: checklist.checks.map(CheckJSON.init))
        }
        pin = journey.pin.map { PinJSON(stage: $0.stage, reason: $0.reason, since: $0.createdAt.formatted(.iso8601)) }
    }

    // Written out so `next` and `pin` appear as null rather than vanish.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(stage, forKey: .stage)
        try container.encode(title, forKey: .title)
        try container.encode(storedStage, forKey: .storedStage)
        try container.encode(pendingTransitions, forKey: .pendingTransitions)
        try container.encode(recorded, forKey: .recorded)
        try container.encode(next, forKey: .next)
        try container.encode(pin, forKey: .pin)
    }
}

/// One criterion against one user: `{"metric": "posts", "operator": ">=", "threshold": "50", "actual": "12", "met": false}`.
struct CheckJSON: Encodable {
    let metric: String, `operator`: String, threshold: String, actual: String, met: Bool
    let anyOfGroup: Int?

    enum CodingKeys: String, CodingKey {
        case metric, `operator`, threshold, actual, met, anyOfGroup = "any_of_group"
    }

    init(_ check: CriterionCheck) {
        metric = check.metric.rawValue
        `operator` = check.comparison.rawValue
        threshold = check.threshold
        actual = check.actual
        met = check.met
        anyOfGroup = check.anyOfGroup
    }
}

/// A committed row of `journey_transitions`.
struct TransitionJSON: ResponseEncodable {
    /// The feed position (`journey_transitions.id`), also the event's SSE `id:`.
    let id: Int64
    let user: Int64, seq: Int
    let from: String, to: String, reason: String, source: String
    let rulesVersion: String, createdAt: String

    enum CodingKeys: String, CodingKey {
        case id, user, seq, from, to, reason, source, rulesVersion = "rules_version", createdAt = "created_at"
    }

    init(_ move: RecordedTransition) {
        id = move.id
        user = move.userID
        seq = move.seq
        from = move.from.rawValue
        to = move.to.rawValue
        reason = move.reason
        source = move.source.rawValue
        rulesVersion = move.rulesVersion
        createdAt = move.createdAt.formatted(.iso8601)
    }
}

/// One `text/event-stream` frame: `event:`, `id:` (the transition id, which a client sends back
/// as `Last-Event-ID` to resume) and a single-line `data:` of JSON.
struct ServerSentEvent {
    let name: String
    let data: TransitionJSON

    var buffer: ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // one line, as `data:` needs
        let json = (try? encoder.encode(data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "event: \(name)\nid: \(data.id)\ndata: \(json)\n\n")
    }
}
