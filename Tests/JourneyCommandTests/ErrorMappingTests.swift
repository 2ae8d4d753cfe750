import Foundation
import Journey
import Testing

@testable import JourneyCLI

/// The command line's half of an error: the exit status of each kind (README, "Errors") and its own
/// advice after the library's sentence, which says only what is wrong.
@Suite("errors: exit statuses and advice")
struct ErrorMappingTests {
    @Test(
        "each store failure exits with its documented status",
        arguments: [
            (StorageError.databaseMissing(location: "x.sqlite"), JourneyCLI.ExitStatus.noInput),
            (.isDirectory(path: "x.sqlite"), .noInput),
            (.notADatabase(location: "x.sqlite"), .dataError),
            (.platformTablesMissing(location: "x.sqlite", tables: ["users"]), .dataError),
            (.notMigrated(location: "x.sqlite"), .dataError),
            (.unknownUser(id: 9), .noUser),
            (.readOnly(location: "x.sqlite"), .ioError),
            (.busy(location: "x.sqlite"), .tryAgain),
            (.unreachable(location: "postgresql://db", message: "refused"), .ioError),
            (.notWritable(location: "x.sqlite", what: "the directory"), .ioError),
            (.batchRunning(runID: 7, holder: "box pid 1", startedAt: "a", leaseExpiresAt: "b"), .tryAgain),
            (.leaseLost(runID: 7), .tryAgain),
            (.writeRefused(userID: 3, message: "frozen"), .dataError),
            (.failed(location: "x.sqlite", message: "disk I/O error"), .ioError),
        ] as [(StorageError, JourneyCLI.ExitStatus)])
    func storeStatus(error: StorageError, status: JourneyCLI.ExitStatus) {
        #expect(CommandFailure(JourneyError.store(error)).status == status)
    }

    @Test("rules, refusals and pins exit with their documented statuses")
    func otherStatuses() {
        #expect(CommandFailure(.rules(.unreadable(path: "r.yaml", reason: "no such file"))).status == .noInput)
        #expect(CommandFailure(.rules(.invalid(source: "r.yaml", line: 3, place: "stages", problem: "empty"))).status == .dataError)
        #expect(CommandFailure(.refused(user: 5, .unknownStage(value: "J9", rulesSource: "r.yaml"))).status == .dataError)
        #expect(CommandFailure(.pinned(user: 5, stage: "J1_NEW_USER", reason: "vip")).status == .dataError)
    }

    @Test("the advice follows the library's sentence after a semicolon, once")
    func advice() {
        let missing = CommandFailure(.store(.databaseMissing(location: "x.sqlite"))).message
        #expect(missing == "There is no database at x.sqlite; pass --db PATH or set JOURNEY_DATABASE (journey migrate --create --db PATH creates one).")
        let unmigrated = CommandFailure(.store(.notMigrated(location: "my db.sqlite"))).message
        #expect(unmigrated.hasSuffix("; run journey migrate --db 'my db.sqlite' first."), "\(unmigrated)")
        #expect(CommandFailure(.store(.busy(location: "x.sqlite"))).message.hasSuffix("; try again."))
        #expect(CommandFailure(.store(.batchRunning(runID: 7, holder: "h", startedAt: "a", leaseExpiresAt: "b"))).message.contains("--take-over"))
        #expect(CommandFailure(.pinned(user: 5, stage: "J1_NEW_USER", reason: "vip")).message.hasSuffix("; run journey unpin 5 before moving them."))
        // No advice: the sentence alone.
        #expect(CommandFailure(.store(.unknownUser(id: 9))).message == StorageError.unknownUser(id: 9).description)
    }

    @Test("a location names SQLite or PostgreSQL, and never shows a password")
    func locations() {
        #expect(DatabaseLocation("journey.sqlite").backend == .sqlite)
        #expect(DatabaseLocation("/var/lib/postgresql/x.sqlite").backend == .sqlite)
        #expect(DatabaseLocation("postgresql://app@db/platform").backend == .postgreSQL)
        #expect(DatabaseLocation("POSTGRES://app@db/platform").backend == .postgreSQL)
        #expect(DatabaseLocation("postgresql://app:secret@db:5432/platform").description == "postgresql://app@db:5432/platform")
    }
}
