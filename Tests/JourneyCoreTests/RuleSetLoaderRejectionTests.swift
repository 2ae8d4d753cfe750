import Foundation
import JourneyCore
import Testing

/// One malformed rule file under `Tests/JourneyCoreTests/Rules/` and what the loader must say about it.
struct Rejection: Sendable, CustomTestStringConvertible {
    /// The file name without `.yaml`.
    let file: String
    /// The line the error must carry; `nil` where the problem has no line (a missing top-level key).
    let line: Int?
    /// Text the error's `place` must contain (stage id, criterion, edge…).
    let place: String
    /// Texts the error's `problem` must contain.
    let problem: [String]

    init(_ file: String, line: Int?, place: String, _ problem: String...) {
        self.file = file
        self.line = line
        self.place = place
        self.problem = problem
    }

    var source: String { "Tests/JourneyCoreTests/Rules/\(file).yaml" }
    var testDescription: String { file }
}

@Suite("Loading a rule file refuses every malformed one, naming the file, the place and the line")
struct RuleSetLoaderRejectionTests {
    static let cases: [Rejection] = [
        // The file itself
        Rejection("broken-yaml", line: 6, place: "YAML", "not valid YAML", "mapping values are not allowed"),
        Rejection("duplicate-yaml-key", line: 6, place: "YAML", "duplicate keys", "title"),
        Rejection("top-level-list", line: 1, place: "top level", "expected a mapping"),
        Rejection("missing-version", line: 1, place: "top level", "'version' is missing"),
        Rejection("unknown-top-level-key", line: 2, place: "top level", "unknown key 'cache_ttl'"),
        Rejection("bad-cache-ttl-text", line: 2, place: "cache_ttl_seconds", "positive number of seconds"),
        Rejection("bad-cache-ttl-zero", line: 2, place: "cache_ttl_seconds", "positive number of seconds"),
        Rejection("bad-cache-ttl-negative", line: 2, place: "cache_ttl_seconds", "positive number of seconds"),
        // Stages
        Rejection("no-stages", line: nil, place: "top level", "no 'stages' list"),
        Rejection("empty-stages", line: 2, place: "stages", "the list is empty"),
        Rejection("one-stage", line: 3, place: "stages", "only one stage"),
        Rejection("duplicate-id", line: 7, place: "stage J2_ACTIVE", "duplicate stage id"),
        Rejection("ids-out-of-order", line: 7, place: "stage J2_POWER", "stage 3 must have an id starting with 'J3_'"),
        Rejection("unknown-key", line: 7, place: "stage 2", "unknown key 'critera'"),
        Rejection("criteria-on-first-stage", line: 6, place: "stage J1_START", "takes no criteria"),
        Rejection("bad-enter-from-previous", line: 7, place: "stage J2_ACTIVE", "'enter_from_previous' must be true or false"),
        Rejection("unreachable-stage", line: 9, place: "stage J3_POWER", "no edge can reach this stage from J1_START"),
        // Criteria
        Rejection("unknown-metric", line: 9, place: "stage J2_ACTIVE, criterion 'likes >= 3'", "unknown metric 'likes'"),
        Rejection("wrong-type-count-text", line: 8, place: "criterion 'posts >= \"many\"'", "posts is a count", "whole number"),
        Rejection(
            "wrong-type-boolean-ordered", line: 8, place: "criterion 'onboarding_complete >= 1'", "'>=' compares numbers, but onboarding_complete is a boolean"),
        Rejection("wrong-type-text-ordered", line: 8, place: "criterion 'role > 3'", "'>' compares numbers, but role is a text"),
        Rejection("in-without-list", line: 8, place: "criterion 'subscription_tier in basic'", "'in' takes a list"),
        Rejection("bare-count-metric", line: 8, place: "criterion 'posts'", "only for a boolean metric"),
        Rejection("nested-any", line: 10, place: "stage J2_ACTIVE", "not further groups"),
        // Edges
        Rejection("edge-to-unknown", line: 9, place: "edge J1_START → J9_NOWHERE", "'J9_NOWHERE' is not a stage"),
        Rejection("edge-from-unknown", line: 8, place: "edge J0_BEFORE → J2_ACTIVE", "'J0_BEFORE' is not a stage"),
        Rejection("undeclared-skip", line: 14, place: "edge J1_START → J3_POWER", "skips J2_ACTIVE", "'kind: skip'"),
        Rejection("undeclared-backward", line: 14, place: "edge J3_POWER → J1_START", "goes back", "'kind: backward'"),
        Rejection("kind-mismatch", line: 16, place: "edge J3_POWER → J1_START", "declared 'kind: skip' but the edge is a backward"),
        Rejection("kind-mismatch-forward-as-backward", line: 16, place: "edge J1_START → J3_POWER", "declared 'kind: backward' but the edge is a skip"),
        Rejection("skip-without-reason", line: 14, place: "edge J1_START → J3_POWER", "a skip edge needs a 'reason'"),
        Rejection("from-any-without-kind", line: 14, place: "edge any → J3_POWER", "'from: any' needs 'kind: skip'"),
        Rejection("edge-kind-next", line: 10, place: "edge J1_START → J2_ACTIVE", "'kind' is 'skip' or 'backward', not 'next'"),
        Rejection("edge-to-same-stage", line: 8, place: "edge J2_ACTIVE → J2_ACTIVE", "must lead to another stage"),
        // Cycles whose criteria can all hold at once: a user would leave a stage and come back on unchanged data
        Rejection(
            "oscillation-stopped-posting", line: 14, place: "edges J3_POWER → J2_ACTIVE → J3_POWER",
            "posts = 50, posts_last_30_days = 0", "J3_POWER → J2_ACTIVE (declared, line 14)",
            "J2_ACTIVE → J3_POWER (criteria of J3_POWER, line 9)"),
        Rejection(
            "oscillation-with-minimum-stay", line: 15, place: "edges J3_POWER → J2_ACTIVE → J3_POWER",
            "posts = 50, posts_last_30_days = 0", "days_in_stage does not"),
        Rejection(
            "oscillation-three-edge-cycle", line: 16, place: "edges J3_POWER → J1_START → J2_ACTIVE → J3_POWER",
            "followers = 1, following = 10, posts = 0, role != admin"),
        // Aliases
        Rejection("alias-to-unknown", line: 8, place: "alias J1", "'J1_NEW_USER' is not a stage"),
        Rejection("alias-shadows-stage", line: 8, place: "alias J2_ACTIVE", "already a stage id"),
    ]

    @Test("a malformed rule file is refused with .invalid naming the place", arguments: cases)
    func refused(_ rejection: Rejection) throws {
        // Given a small rule file with exactly one thing wrong
        let yaml = try Fixture.ruleFileText(rejection.file)

        // When it is loaded
        let error = try #require(Fixture.loadError(yaml, source: rejection.source), "\(rejection.file).yaml was accepted")

        // Then the error is .invalid for that file, with the right line, place and problem
        guard case let .invalid(source, line, place, problem) = error else {
            Issue.record("expected .invalid, got \(error)")
            return
        }
        #expect(source == rejection.source)
        #expect(line == rejection.line, "line for \(rejection.file): \(error)")
        #expect(place.contains(rejection.place), "place for \(rejection.file): \(error)")
        for expected in rejection.problem {
            #expect(problem.contains(expected), "problem for \(rejection.file): \(error)")
        }
        // And the message a person reads starts with file:line and names the place
        let location = rejection.line.map { "\(rejection.source):\($0): " } ?? "\(rejection.source): "
        #expect(error.description.hasPrefix(location))
        #expect(error.description.contains(place))
    }

    @Test("every rule file under Tests/JourneyCoreTests/Rules is a rejection case that is checked")
    func everyFileIsACase() throws {
        // Given the rule files in the test bundle
        let folder = try #require(Bundle.module.url(forResource: "Rules", withExtension: nil))
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".yaml") }
            .map { String($0.dropLast(".yaml".count)) }

        // When they are compared with the table (and the files the known-bug tests use)
        let covered = Set(Self.cases.map(\.file)).union(KindOnNextEdgeTests.files).union(["missing-title"])

        // Then no file is left without a test, and no case names a missing file
        #expect(Set(files) == covered)
    }

    @Test("a missing stage title is refused, naming the stage")
    func missingTitle() throws {
        // Given a stage without a title
        let yaml = try Fixture.ruleFileText("missing-title")

        // When it is loaded
        let error = try #require(Fixture.loadError(yaml, source: "missing-title.yaml"))

        // Then the stage is named and the missing key is said
        guard case let .invalid(_, _, place, problem) = error else {
            Issue.record("expected .invalid, got \(error)")
            return
        }
        #expect(place == "stage J2_ACTIVE")
        #expect(problem.contains("'title' is missing"))
    }

    @Test("an empty file is refused: it has no stages")
    func emptyFile() throws {
        // Given an empty text
        // When it is loaded
        let error = try #require(Fixture.loadError("", source: "empty.yaml"))

        // Then the loader says the file has no top-level mapping
        guard case let .invalid(source, _, place, _) = error else {
            Issue.record("expected .invalid, got \(error)")
            return
        }
        #expect(source == "empty.yaml")
        #expect(place == "top level")
    }
}

/// Probes a defect: an edge to the very next stage declared with `kind: skip` or `kind: backward`
/// is accepted, although the declared kind does not match the edge (see the report).
@Suite("A declared kind must match the edge, also on an edge to the next stage")
struct KindOnNextEdgeTests {
    static let files = ["kind-mismatch-next-as-backward", "kind-mismatch-next-as-skip"]

    @Test("J1→J2 declared as 'kind: backward' or 'kind: skip' is refused", arguments: files)
    func nextEdgeWithWrongKind(file: String) throws {
        // Given an edge J1_START → J2_ACTIVE (the next stage) that declares another kind
        let yaml = try Fixture.ruleFileText(file)

        // When it is loaded
        let error = Fixture.loadError(yaml, source: "\(file).yaml")

        // Then it is refused at the 'kind' line, like any other kind that does not match
        guard case let .invalid(_, line, place, problem)? = error else {
            Issue.record("\(file).yaml was accepted; a J1→J2 edge declared with a kind other than next must be refused")
            return
        }
        #expect(line == 10)
        #expect(place.contains("edge J1_START → J2_ACTIVE"))
        #expect(problem.contains("kind"))
    }
}
