import Foundation
import JourneyCore
import Testing

/// Shared fixtures for the JourneyCore tests: a fixed clock, the rule files, small helpers.
enum Fixture {
    /// Every test's "now": 2026-01-01 00:00:00 UTC. Tests never read the real clock.
    static let now = Date(timeIntervalSince1970: 1_767_225_600)

    /// The instant `days` whole days before ``now`` (plus `seconds` more into the past).
    static func daysAgo(_ days: Int, plusSeconds seconds: Int = 0) -> Date {
        now.addingTimeInterval(-Double(days) * 86_400 - Double(seconds))
    }

    /// The repository root, found from this file: …/Tests/JourneyCoreTests/Support.swift.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // JourneyCoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root

    /// The text of `Rules/mundo-tango.yaml`, the default rule set.
    static func defaultRulesText() throws -> String {
        try String(contentsOf: repositoryRoot.appending(path: "Rules/mundo-tango.yaml"), encoding: .utf8)
    }

    /// The default rule set, loaded and validated.
    static func defaultRules() throws -> RuleSet {
        try RuleSetLoader.load(yaml: defaultRulesText(), source: "Rules/mundo-tango.yaml")
    }

    /// The text of a small rule file under `Tests/JourneyCoreTests/Rules/`.
    static func ruleFileText(_ name: String) throws -> String {
        let url = try #require(
            Bundle.module.url(forResource: name, withExtension: "yaml", subdirectory: "Rules"),
            "the test rule file Rules/\(name).yaml is not in the test bundle"
        )
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// Loads `yaml` and returns the error the loader throws, or nil when it loads.
    static func loadError(_ yaml: String, source: String) -> RulesError? {
        do {
            _ = try RuleSetLoader.load(yaml: yaml, source: source)
            return nil
        } catch {
            return error
        }
    }

    /// Loads an inline rule set that the test expects to be valid.
    static func rules(_ yaml: String, source: String = "inline.yaml") throws -> RuleSet {
        try RuleSetLoader.load(yaml: yaml, source: source)
    }
}

extension Evaluation {
    /// The moves as `J1→J2` strings, for compact expectations.
    var path: [String] { transitions.map { "\($0.from)→\($0.to)" } }
}

extension Checklist {
    /// The check for `metric`, if the checklist has exactly one.
    func check(_ metric: Metric) -> CriterionCheck? {
        let found = checks.filter { $0.metric == metric }
        return found.count == 1 ? found[0] : nil
    }
}
