import Foundation
import Journey
import Testing

@testable import JourneyCLI

/// The report types the CLI's `--json` and the example server share: typed, every key present,
/// instants as ISO-8601 text whatever the encoder, and decodable back by a Swift client.
@Suite("shared report JSON")
struct ReportJSONTests {
    /// A committed row at a whole second (the text keeps seconds).
    static let row = RecordedTransition(
        id: 412, userID: 42, seq: 2, from: "J1_NEW_USER", to: "J2_ACTIVE_USER", reason: "graduated to J2_ACTIVE_USER",
        rulesVersion: "mundo-tango-1", metrics: #"{"onboarding_complete":true,"posts":3,"role":"user","subscription_tier":null}"#,
        source: .batch, createdAt: Date(timeIntervalSince1970: 1_764_306_249))

    @Test("a transition prints typed metrics and an ISO-8601 instant, and decodes back")
    func transition() throws {
        let line = try jsonLine(TransitionReport(Self.row))
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(Set(object.keys) == ["id", "user_id", "seq", "from_state", "to_state", "reason", "rules_version", "metrics", "source", "created_at"])
        #expect(object["created_at"] as? String == "2025-11-28T05:04:09Z")
        let metrics = try #require(object["metrics"] as? [String: Any])
        #expect(metrics["posts"] as? Int == 3)
        #expect(metrics["onboarding_complete"] as? Bool == true)
        #expect(metrics["subscription_tier"] is NSNull)
        // A host's plain JSONEncoder (no date strategy) writes the same instant.
        let plain = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(TransitionReport(Self.row))) as? [String: Any])
        #expect(plain["created_at"] as? String == "2025-11-28T05:04:09Z")
        #expect(try JSONDecoder().decode(TransitionReport.self, from: line) == TransitionReport(Self.row))
    }

    @Test("an evaluation keeps every key, null included, and decodes back")
    func evaluation() throws {
        let text = """
            {"user": 42, "stored_stage": "J1_NEW_USER", "stage": "J2_ACTIVE_USER", "title": "Active User", "persisted": true,
             "transitions": [{"from": "J1_NEW_USER", "to": "J2_ACTIVE_USER", "kind": "next", "reason": "graduated", "seq": 1, "id": 7}],
             "next": null, "pin": {"stage": "J2_ACTIVE_USER", "reason": "vip", "pinned_at": "2025-11-28T05:04:09Z"},
             "metrics": {"posts": 60, "role": "user", "onboarding_complete": true, "subscription_tier": null},
             "rules_version": "mundo-tango-1", "evaluated_at": "2025-11-28T05:04:09Z"}
            """
        let report = try JSONDecoder().decode(EvaluationReport.self, from: Data(text.utf8))
        #expect(report.metrics["posts"] == .integer(60) && report.metrics["subscription_tier"] == .null)
        let line = try jsonLine(report)
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(object["next"] is NSNull)
        #expect(object["evaluated_at"] as? String == "2025-11-28T05:04:09Z")
        #expect(try JSONDecoder().decode(EvaluationReport.self, from: line) == report)
    }
}
