import Foundation
import JourneyCore
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
            guard case .malformedURL(_, let found) = error as? PostgresStoreError else { return false }
            return found == reason
        }
    }

    @Test func messagesHideThePassword() {
        let error = PostgresStoreError.malformedURL("postgresql://app:hunter2@host/db/x", reason: "the database name contains /")
        #expect(!error.description.contains("hunter2"))
        #expect(error.description.contains("postgresql://app:***@host/db/x"))
    }

    @Test func anUnreachableServerIsNamed() async {
        // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
        await #expect {
            _ = try await PostgresStore.open(url: "postgresql://postgres@127.0.0.1:1/journey")
        } throws: { error in
            guard case .unreachable(let host, let port, _) = error as? PostgresStoreError else { return false }
            return host == "127.0.0.1" && port == 1
        }
    }
}

@Suite("PostgreSQL connection errors", .enabled(if: TestServer.isAvailable, TestServer.skipNote))
struct ConnectionErrorTests {
    @Test func aMissingDatabaseIsNamed() async throws {
        var location = try PostgresLocation(url: try #require(TestServer.url))
        location.database = "journey_no_such_database"
        await #expect {
            _ = try await PostgresStore.open(location: location)
        } throws: { error in
            guard case .databaseMissing(let database, _, _) = error as? PostgresStoreError else { return false }
            return database == "journey_no_such_database" && "\(error)".contains("createdb journey_no_such_database")
        }
    }

    @Test func anUnmigratedDatabaseIsRefusedWithoutMigrate() async throws {
        try await ScratchDatabase.with { scratch in
            try await scratch.createPlatformSchema()
            await #expect {
                _ = try await PostgresStore.open(url: scratch.url)
            } throws: { error in
                guard case .notMigrated(let steps) = error as? PostgresStoreError else { return false }
                return steps.count == 6
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
                guard case .platformTablesMissing(let tables) = error as? PostgresStoreError else { return false }
                return tables == ["users", "posts", "follows", "events", "event_rsvps"]
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
