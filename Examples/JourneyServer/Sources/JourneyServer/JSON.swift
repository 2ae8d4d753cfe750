import Foundation
import Hummingbird
import Journey

/// The body of `POST /users/{id}/journey/transitions`: `{"to": "J3_POWER_USER"}`.
struct TransitionRequest: Decodable {
    let to: String
}

// The answers are Journey's own report types, the objects `journey evaluate --json` and
// `journey watch --json` print: one shape for the command line and the API.
//
// `GET /users/{id}/journey` answers an ``EvaluationReport`` with `persisted: false`: its
// `transitions` are the moves an evaluate would record now (no `seq`, no `id`).
// `POST /users/{id}/journey/evaluate` answers one with `persisted: true`: its `transitions` are the
// rows this request wrote, each with its `seq` and its `id` (the event stream's `id:`).
// swift-format-ignore: AvoidRetroactiveConformances
// The example owns neither type; declaring the conformance here keeps Journey free of Hummingbird.
extension EvaluationReport: @retroactive ResponseEncodable {}

/// A committed row of `journey_transitions`: the 201 answer to an explicit move, and the `data:` of each event.
// swift-format-ignore: AvoidRetroactiveConformances
extension TransitionReport: @retroactive ResponseEncodable {}

/// One `text/event-stream` frame: `event:`, `id:` (the transition id, which a client sends back
/// as `Last-Event-ID` to resume) and a single-line `data:` of JSON.
struct ServerSentEvent {
    let name: String
    let data: TransitionReport

    var buffer: ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // one line, as `data:` needs
        let json = (try? encoder.encode(data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "event: \(name)\nid: \(data.id)\ndata: \(json)\n\n")
    }
}
