import Foundation
import JourneyCore
import JourneyStorage
import JourneyTestSupport
import Testing

// The contract suite holds every `JourneyStore` to the same behaviour. Each test takes a `Backend`
// argument and runs once per backend in `Backend.available`; everything it checks goes through the
// protocol. What the protocol cannot do (a platform that writes posts and follows, a row changed
// behind the store's back) goes through a backend's `StoreFixture`, the only code that knows the
// database: adding a backend is one file that implements `StoreFixture` and `FixtureDatabase`,
// plus its line in `Backend.available`.

/// One store implementation under test, as a `@Test(arguments:)` value.
struct Backend: Sendable, CustomTestStringConvertible {
    let fixture: any StoreFixture

    var testDescription: String { fixture.name }

    /// The backends this run tests: SQLite always; PostgreSQL when `JOURNEY_TEST_POSTGRES_URL` names
    /// a server (`scripts/postgres-test-cluster.sh start`).
    static let available: [Backend] = {
        var backends = [Backend(fixture: SQLiteFixture())]
        if let url = ProcessInfo.processInfo.environment["JOURNEY_TEST_POSTGRES_URL"], !url.isEmpty {
            backends.append(Backend(fixture: PostgresFixture(url: url)))
        }
        return backends
    }()

    /// Runs `body` on a new platform database holding `platform`, migrated at `migratedAt`, and
    /// removes the database afterwards, whether `body` threw or not.
    func with<T>(
        _ platform: Platform = Platform(), migratedAt: Date = Instants.migration,
        _ body: (any FixtureDatabase) async throws -> T
    ) async throws -> T {
        let database = try await fixture.makeDatabase(platform, migratedAt: migratedAt)
        do {
            let result = try await body(database)
            await database.remove()
            return result
        } catch {
            await database.remove()
            throw error
        }
    }
}

/// How one backend builds the databases the contract tests run on.
protocol StoreFixture: Sendable {
    /// The backend's name, in test names: `SQLite`, `PostgreSQL`.
    var name: String { get }

    /// Whether the backend's platform tables can hold `stamp` as written (SQLite keeps any value
    /// in any column; PostgreSQL's `timestamp` columns hold instants, not epoch numbers).
    func canStore(_ stamp: Stamp) -> Bool

    /// Whether ``JourneyStore/observeCommits(_:)`` reports writes made through the store (a store
    /// may do nothing there).
    var reportsCommits: Bool { get }

    /// A new platform database whose platform tables hold `platform`, written before the migrator
    /// runs (as the platform's data is when Journey first arrives), then migrated at `migratedAt`.
    func makeDatabase(_ platform: Platform, migratedAt: Date) async throws -> any FixtureDatabase
}

/// A database a test arranges and inspects, with the store under test on it.
protocol FixtureDatabase: Sendable {
    /// The store under test, opened (and migrated) by the fixture.
    var store: any JourneyStore { get }

    /// A second store on the same database, as another process would open it (its own connections).
    func openStore(readOnly: Bool) async throws -> any JourneyStore

    /// Rows the platform's own application writes after the migration (its posts, follows, …).
    func add(_ platform: Platform) async throws

    /// Runs portable SQL (no placeholders, no dialect: `UPDATE users SET follower_count = 9 WHERE id = 2`)
    /// as the platform's application would, behind the store's back. A timestamp literal in it
    /// (`'2025-06-01 12:00:00'`) is UTC: a fixture whose database reads literals in a session time
    /// zone sets that zone to UTC.
    func execute(_ sql: String) async throws

    /// The integer the first column of the first row holds (`SELECT COUNT(*) …`), in portable SQL.
    func integer(_ sql: String) async throws -> Int?

    /// Sets `users.customer_journey_state` of `user` behind the store's back; nil stores NULL (the
    /// fixture first makes the column nullable where the migrator made it NOT NULL, as an ORM's
    /// schema push would).
    func setStoredStage(user: Int64, _ stage: String?) async throws

    /// Inserts a `journey_transitions` row directly (bypassing the store's writes); throws what the
    /// database throws when its constraints refuse the row.
    func insertTransition(
        user: Int64, seq: Int, from: String, to: String, createdAt: Date,
        source: String, metrics: String) async throws

    /// Installs a trigger of the platform's that undoes `write` for `user` without an error.
    func tamper(with write: TamperedWrite, of user: Int64) async throws

    /// Closes every connection and deletes the database.
    func remove() async
}

extension FixtureDatabase {
    func insertTransition(
        user: Int64, seq: Int, from: String, to: String, createdAt: Date = Instants.now,
        source: String = "batch", metrics: String = "{}"
    ) async throws {
        try await insertTransition(user: user, seq: seq, from: from, to: to, createdAt: createdAt, source: source, metrics: metrics)
    }
}

/// A timestamp as the platform's application stored it (SPEC §8): NULL, text of any form, or a number.
enum Stamp: Sendable, Hashable, CustomStringConvertible {
    case null
    case text(String)
    case integer(Int64)
    case real(Double)

    /// `date` in the canonical form, `YYYY-MM-DD HH:MM:SS` (with `.SSS` when it has a fraction), UTC.
    static func at(_ date: Date) -> Stamp { .text(canonical(date)) }

    /// `date` in the canonical form: `YYYY-MM-DD HH:MM:SS`, with `.SSS` when it has a fraction, UTC.
    static func canonical(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat =
            date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970
            ? "yyyy-MM-dd HH:mm:ss" : "yyyy-MM-dd HH:mm:ss.SSS"
        return formatter.string(from: date)
    }

    var description: String {
        switch self {
        case .null: "NULL"
        case .text(let text): "'\(text)'"
        case .integer(let number): "\(number)"
        case .real(let number): "\(number)"
        }
    }
}

/// Rows of the five platform tables, as the platform's application writes them.
struct Platform: Sendable {
    struct User: Sendable {
        var id: Int64
        var email: String? = nil
        var city: String? = nil
        var country: String? = nil
        var role: String? = nil
        var tier: String? = nil
        var onboarding: Bool? = nil
        var createdAt: Stamp = .null
    }

    struct Post: Sendable {
        var userID: Int64
        var visibility: String? = "public"
        var createdAt: Stamp
    }

    struct Follow: Sendable {
        var follower: Int64
        var following: Int64
        var createdAt: Stamp = .null
    }

    struct Event: Sendable {
        var id: Int64
        var organizer: Int64?
        var title: String? = nil
        var city: String? = nil
        var startDate: Stamp
    }

    struct RSVP: Sendable {
        var eventID: Int64
        var userID: Int64
        var status: String?
        var createdAt: Stamp = .null
    }

    var users: [User] = []
    var posts: [Post] = []
    var follows: [Follow] = []
    var events: [Event] = []
    var rsvps: [RSVP] = []

    /// Every timestamp the rows hold, to ask a fixture whether it can store them all.
    var stamps: [Stamp] {
        users.map(\.createdAt) + posts.map(\.createdAt) + follows.map(\.createdAt) + events.map(\.startDate) + rsvps.map(\.createdAt)
    }

    /// `count` users with ids 1…count, signed up `daysAgo` days before ``Instants/now``, onboarded, on `tier`.
    static func users(_ count: Int, daysAgo: Double = 100, tier: String = "free", role: String = "user") -> Platform {
        Platform(
            users: (0..<Int64(count)).map { $0 + 1 }.map { id in
                User(
                    id: id, email: "u\(id)@example.org", role: role, tier: tier, onboarding: true,
                    createdAt: .at(Instants.now.addingTimeInterval(-daysAgo * 86_400)))
            })
    }
}

/// The instants the suite reads metrics and writes moves at.
enum Instants {
    /// 2025-06-15 12:00:00 UTC: the small platform's metrics are computed by hand at this instant.
    static let now = Date(timeIntervalSince1970: 1_749_988_800)
    /// 2025-06-05 06:00:00 UTC: when the migrator runs (it backfills `last_journey_update` where
    /// `created_at` is NULL).
    static let migration = Date(timeIntervalSince1970: 1_749_103_200)
    static let day: TimeInterval = 86_400
}

/// The default journey's stages, for moves written in the tests.
extension StageID {
    static let j1: StageID = "J1_NEW_USER"
    static let j2: StageID = "J2_ACTIVE_USER"
    static let j3: StageID = "J3_POWER_USER"
    static let j4: StageID = "J4_SUPER_ADMIN"
}

/// A move along the default journey, with a reason.
func move(_ from: StageID, _ to: StageID, _ reason: String = "criteria met") -> Transition {
    Transition(from: from, to: to, kind: .next, reason: reason)
}

/// A pending move of `user` from the stored `expected` value along `transitions`.
func pending(
    _ user: Int64, from expected: String = "J1_NEW_USER", _ transitions: [Transition],
    metrics: UserMetrics = UserMetrics()
) -> PendingMove {
    PendingMove(userID: user, expectedStage: expected, transitions: transitions, metrics: metrics)
}

/// The ``StorageError`` `body` threw, or nil when it returned (any other error is an issue).
func storageError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> StorageError? {
    do {
        try await body()
        return nil
    } catch let error as StorageError {
        return error
    } catch {
        Issue.record("expected a StorageError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The funnel as a dictionary; a stage listed twice is an issue (each stored value is one entry).
func funnelCounts(_ store: any JourneyStore, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for (stage, count) in try await store.funnel() {
        if counts[stage] != nil { Issue.record("the funnel lists '\(stage)' twice", sourceLocation: sourceLocation) }
        counts[stage, default: 0] += count
    }
    return counts
}

/// A write a trigger of the platform's undoes without an error (``FixtureDatabase/tamper(with:of:)``).
enum TamperedWrite: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// The user's stage update is skipped (`RAISE(IGNORE)`; PostgreSQL: `BEFORE UPDATE` returning NULL).
    case stageUpdateSkipped
    /// The user's transition row is skipped (the same on `INSERT INTO journey_transitions`).
    case transitionSkipped
    /// Another stage is stored than the one written (SQLite: an `AFTER UPDATE` writing J1 again;
    /// PostgreSQL: a `BEFORE UPDATE` setting `NEW`'s stage).
    case stageRewritten
    /// The transition row is deleted as soon as it is inserted (an `AFTER INSERT`).
    case transitionRemoved

    var testDescription: String { rawValue }

    /// The SQLite trigger doing it to `user`.
    func sqliteTrigger(user: Int64) -> String {
        let name = "platform_tampers_\(user)"
        return switch self {
        case .stageUpdateSkipped:
            "CREATE TRIGGER \(name) BEFORE UPDATE OF customer_journey_state ON users WHEN OLD.id = \(user) BEGIN SELECT RAISE(IGNORE); END"
        case .transitionSkipped:
            "CREATE TRIGGER \(name) BEFORE INSERT ON journey_transitions WHEN NEW.user_id = \(user) BEGIN SELECT RAISE(IGNORE); END"
        case .stageRewritten:
            """
            CREATE TRIGGER \(name) AFTER UPDATE OF customer_journey_state ON users WHEN NEW.id = \(user)
            BEGIN UPDATE users SET customer_journey_state = 'J1_NEW_USER' WHERE id = NEW.id; END
            """
        case .transitionRemoved:
            "CREATE TRIGGER \(name) AFTER INSERT ON journey_transitions WHEN NEW.user_id = \(user) BEGIN DELETE FROM journey_transitions WHERE id = NEW.id; END"
        }
    }

    /// The PostgreSQL trigger function's body and the trigger doing it to `user`.
    func postgresTrigger(user: Int64) -> (body: String, trigger: String) {
        let name = "platform_tampers_\(user)"
        return switch self {
        case .stageUpdateSkipped:
            ("RETURN NULL;", "CREATE TRIGGER \(name) BEFORE UPDATE ON users FOR EACH ROW WHEN (OLD.id = \(user)) EXECUTE FUNCTION platform_tampers()")
        case .transitionSkipped:
            (
                "RETURN NULL;",
                "CREATE TRIGGER \(name) BEFORE INSERT ON journey_transitions FOR EACH ROW WHEN (NEW.user_id = \(user)) EXECUTE FUNCTION platform_tampers()"
            )
        case .stageRewritten:
            (
                "NEW.customer_journey_state := 'J1_NEW_USER'; RETURN NEW;",
                "CREATE TRIGGER \(name) BEFORE UPDATE ON users FOR EACH ROW WHEN (OLD.id = \(user)) EXECUTE FUNCTION platform_tampers()"
            )
        case .transitionRemoved:
            (
                "DELETE FROM journey_transitions WHERE id = NEW.id; RETURN NULL;",
                "CREATE TRIGGER \(name) AFTER INSERT ON journey_transitions FOR EACH ROW WHEN (NEW.user_id = \(user)) EXECUTE FUNCTION platform_tampers()"
            )
        }
    }
}
