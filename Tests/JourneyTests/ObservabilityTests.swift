import Foundation
import InMemoryLogging
import JourneyCore
import Logging
import MetricsTestKit
import Testing

@testable import Journey

@Suite("Metrics and logs reach the host's backends")
struct ObservabilityTests {
    @Test("Counters count evaluations, hits, misses and transitions by edge; the query is timed")
    func metrics() async throws {
        // Given a service reporting to a test metrics factory, and user 1 ready for J2
        let database = try TemporaryDatabase(users: 2)
        try makeActive(1, followedBy: 2, in: database)
        let metrics = TestMetrics()
        let service = try await database.service(options: JourneyOptions(metricsFactory: metrics))

        // When the user is read twice and then moved
        _ = try await service.journey(of: 1)
        _ = try await service.journey(of: 1)
        _ = try await service.evaluateAndPersist(user: 1)

        // Then each instrument saw exactly that
        #expect(metrics.counterTotal(label: "journey_cache_misses_total") == 1)
        #expect(metrics.counterTotal(label: "journey_cache_hits_total") == 1)
        #expect(metrics.counterTotal(label: "journey_evaluations_total") == 2)
        #expect(metrics.counterTotal(label: "journey_transitions_total", dimensions: [("from", "J1_NEW_USER"), ("to", "J2_ACTIVE_USER")]) == 1)
        #expect(try metrics.expectTimer("journey_metrics_query_duration").values.count == 2)
    }

    @Test("An evaluation slower than the threshold is a warning with the user id; faster ones are not")
    func slowEvaluationWarning() async throws {
        let database = try TemporaryDatabase(users: 2)
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "test", factory: { _ in handler })
        // A threshold of zero makes every evaluation slow; an hour makes none slow
        let strict = try await database.service(options: JourneyOptions(slowEvaluationThreshold: 0, logger: logger))
        _ = try await strict.journey(of: 2)
        let warnings = handler.entries.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["user"] == "2")

        handler.clear()
        let lenient = try await database.service(options: JourneyOptions(slowEvaluationThreshold: 3_600, logger: logger))
        _ = try await lenient.journey(of: 1)
        #expect(handler.entries.filter { $0.level == .warning }.isEmpty)
    }

}
