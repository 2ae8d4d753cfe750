import Foundation
import JourneyCore
import JourneyStorage
import Testing

@testable import JourneyPostgres

@Suite("PostgreSQL URLs")
struct URLTests {
    @Test func parsesEveryPart() throws {
        let location = try PostgresLocation(url: "postgresql://journey:s%40cret@db.internal:6543/platform?sslmode=disable")
        #expect(location == PostgresLocation(host: "db.internal", port: 6543, user: "journey", password: "s@cret", database: "platform", tls: .disable))
        let short = try PostgresLocation(url: "postgres://app@127.0.0.1/journey")
        #expect(short.port == 5432 && short.password == nil && short.tls == .prefer)
        #expect(try PostgresLocation(url: "postgresql://app@[::1]:5433/db").host == "::1")
    }

    @Test(arguments: [
        ("journey.sqlite", "it must start with postgresql://"),
        ("postgresql://127.0.0.1:5432/db", "no user before @"),
        ("postgresql://app@:5432/db", "no host"),
        ("postgresql://app@host:5432", "no database name after the host"),
        ("postgresql://app@host:5432/", "no database name after the host"),
        ("postgresql://app@host:5432/a/b", "the database name contains /"),
        ("postgresql://app@host:99999/db", "port 99999 is out of range"),
        ("postgresql://app@host/db?sslmode=maybe", "sslmode must be disable, prefer, require or verify-full"),
        ("postgresql://app@host/db?connect_timeout=3", "unknown parameter connect_timeout"),
    ])
    func refusesMalformedURLs(url: String, reason: String) {
        #expect {
            _ = try PostgresLocation(url: url)
        } throws: { error in
            (error as? PostgresURLError)?.reason == reason
        }
    }

    @Test func messagesHideThePassword() async throws {
        let error = PostgresURLError(url: "postgresql://app:hunter2@host/db/x", reason: "the database name contains /")
        #expect(!error.description.contains("hunter2"))
        #expect(error.description.contains("postgresql://app:***@host/db/x"))
        // The store names its database by the URL without the password.
        let location = try? PostgresLocation(url: "postgresql://app:hunter2@db.internal:6543/platform?sslmode=require")
        #expect(location?.description == "postgresql://app@db.internal:6543/platform?sslmode=require")
        #expect(try PostgresLocation(url: "postgres://app@[::1]/db").description == "postgresql://app@[::1]:5432/db")
        await #expect {
            _ = try await PostgresStore.open(url: "postgresql://app:hunter2@host/db/x")
        } throws: { error in
            guard let error = error as? StorageError, case .failed(let location, _) = error else { return false }
            return location == "postgresql://app:***@host/db/x" && !error.description.contains("hunter2")
        }
    }

    /// A wrong port: nothing listens, the connection is refused at once, and the store says the
    /// database cannot be reached (not that it is missing or damaged).
    @Test func anUnreachableServerIsNamed() async {
        // Port 1 on the loopback: nothing listens there.
        await #expect {
            _ = try await PostgresStore.open(url: "postgresql://postgres:secret@127.0.0.1:1/journey")
        } throws: { error in
            guard let error = error as? StorageError, case .unreachable(let location, _) = error else { return false }
            return location == "postgresql://postgres@127.0.0.1:1/journey" && error.category == .failure
        }
    }
}

@Suite("PostgreSQL connection errors", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct ConnectionErrorTests {
    /// A wrong database name on a live server: not found, named by its URL.
    @Test func aMissingDatabaseIsNamed() async throws {
        var location = try PostgresLocation(url: try #require(TestServer.url))
        location.database = "journey_no_such_database"
        await #expect {
            _ = try await PostgresStore.open(location: location)
        } throws: { error in
            guard let error = error as? StorageError, case .databaseMissing(let shown) = error else { return false }
            return shown.hasSuffix("/journey_no_such_database") && error.category == .notFound
        }
    }

    @Test func anUnmigratedDatabaseIsRefusedWithoutMigrate() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            for mode in [PostgresStore.OpenMode.requireMigrated, .readOnly] {
                await #expect {
                    _ = try await PostgresStore.open(url: scratch.url, mode: mode)
                } throws: { error in
                    guard let error = error as? StorageError, case .notMigrated(let location) = error else { return false }
                    return location == scratch.url && error.category == .invalidDatabase
                }
            }
            // Nothing was created by the refused open.
            #expect(try await scratch.value("SELECT to_regclass('journey_migrations') IS NULL", as: Bool.self))
        }
    }

    @Test func anEmptyDatabaseLacksThePlatformTables() async throws {
        try await ScratchDatabase.with { scratch in
            await #expect {
                _ = try await PostgresStore.open(url: scratch.url)
            } throws: { error in
                guard case .platformTablesMissing(_, let tables) = error as? StorageError else { return false }
                return tables == ["users", "posts", "follows", "events", "event_rsvps"]
            }
        }
    }

    /// A table the store needs dropped behind its back: the query fails as "not migrated", not as
    /// an opaque failure.
    @Test func aMissingRelationReadsAsNotMigrated() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.withStore { store in
                try await scratch.execute("DROP TABLE journey_rules")
                await #expect(throws: StorageError.notMigrated(location: store.location)) { try await store.adoptedRules() }
            }
        }
    }

    /// A write that waits on a lock longer than the server allows (`lock_timeout`): busy, so a caller may try again.
    @Test func aLockTimeoutIsBusy() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.execute("ALTER DATABASE \(scratch.name) SET lock_timeout = '200ms'")
            try await scratch.withStore { store in
                try await scratch.execute("INSERT INTO users (id) VALUES (1)", "BEGIN", "SELECT 1 FROM users WHERE id = 1 FOR UPDATE")
                await #expect {
                    _ = try await store.pin(user: 1, reason: "held", now: TestServer.now)
                } throws: { error in
                    (error as? StorageError) == .busy(location: store.location)
                }
                try await scratch.execute("ROLLBACK")
            }
        }
    }
}

@Suite("Transition metrics as JSON")
struct MetricsJSONTests {
    @Test func everyValueSurvivesARoundTrip() throws {
        let hostile = "tier \"gold\"\\\n\t\u{01}é🙂"
        let metrics = UserMetrics(posts: 3, onboardingComplete: true, subscriptionTier: hostile, role: nil)
        let json = metrics.json(now: Date(timeIntervalSince1970: 0))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["subscription_tier"] as? String == hostile)
        #expect(object["posts"] as? Int == 3)
        #expect(object["onboarding_complete"] as? Bool == true)
        #expect(object["role"] is NSNull)
        #expect(Set(object.keys) == Set(Metric.allCases.map(\.rawValue)))
    }
}
