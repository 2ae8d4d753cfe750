import Foundation
import JourneyStorage
import PostgresNIO

/// The schema of SPEC §3 on PostgreSQL, as steps that also upgrade the platform's own database
/// (`serial` ids, `boolean` onboarding, `timestamp`/`timestamptz` columns, `varchar(50)` stage).
///
/// Each step runs once, in its own transaction, under `pg_advisory_xact_lock(`` lockKey ``)`, and is
/// recorded in `journey_migrations` in that transaction: two processes migrating at once wait for each
/// other, and the second finds the first's steps recorded. Steps are never edited once shipped; a
/// change is a new step.
enum PostgresMigrations {
    /// The advisory lock every migration transaction takes (`'journey'` as bytes).
    static let lockKey: Int64 = 0x6A6F_7572_6E65_79

    /// The step names, in order.
    static let steps = [
        "v1 platform tables", "v1 timestamp functions", "v1 journey columns", "v1 platform indexes",
        "v1 follower count", "v1 journey tables", "v2 batch lease", "v2 pin events", "v2 adopted rules",
    ]

    /// The platform's five tables.
    static let platformTables = ["users", "posts", "follows", "events", "event_rsvps"]

    /// The platform tables, each created only where missing, in the platform's own types.
    static let platformTablesSQL: [(table: String, sql: String)] = [
        (
            "users",
            """
            CREATE TABLE users (
                id serial PRIMARY KEY,
                email varchar(255), city varchar(100), country varchar(100), role varchar(50),
                subscription_tier varchar(50), is_onboarding_complete boolean DEFAULT false,
                created_at timestamptz DEFAULT now(),
                customer_journey_state varchar NOT NULL DEFAULT 'J1_NEW_USER',
                last_journey_update timestamptz,
                follower_count integer NOT NULL DEFAULT 0)
            """
        ),
        (
            "posts",
            """
            CREATE TABLE posts (
                id serial PRIMARY KEY, user_id integer NOT NULL, content text,
                visibility varchar(20), created_at timestamptz DEFAULT now())
            """
        ),
        (
            "follows",
            """
            CREATE TABLE follows (
                id serial PRIMARY KEY, follower_id integer NOT NULL, following_id integer NOT NULL,
                created_at timestamptz DEFAULT now(), UNIQUE (follower_id, following_id))
            """
        ),
        (
            "events",
            """
            CREATE TABLE events (
                id serial PRIMARY KEY, organizer_id integer, title varchar(255), city varchar(100),
                start_date timestamptz)
            """
        ),
        (
            "event_rsvps",
            """
            CREATE TABLE event_rsvps (
                id serial PRIMARY KEY, event_id integer NOT NULL, user_id integer NOT NULL,
                status varchar(20), created_at timestamptz DEFAULT now())
            """
        ),
    ]

    /// The three journey columns of `users`, each added only where missing.
    static let journeyColumnsSQL: [(column: String, sql: String)] = [
        ("customer_journey_state", "ALTER TABLE users ADD COLUMN customer_journey_state varchar NOT NULL DEFAULT 'J1_NEW_USER'"),
        ("last_journey_update", "ALTER TABLE users ADD COLUMN last_journey_update timestamptz"),
        ("follower_count", "ALTER TABLE users ADD COLUMN follower_count integer NOT NULL DEFAULT 0"),
    ]

    /// One index of SPEC §3: its name, table, and key columns with their direction.
    struct IndexSpec: Sendable {
        let name: String
        let table: String
        let keys: [(column: String, descending: Bool)]

        var sql: String {
            "CREATE INDEX \(name) ON \(table) (" + keys.map { $0.column + ($0.descending ? " DESC" : "") }.joined(separator: ", ") + ")"
        }
    }

    /// The fifteen platform indexes of SPEC §3, by the SQLite store's names.
    static let platformIndexes: [IndexSpec] = [
        .init(name: "idx_posts_user_id", table: "posts", keys: [("user_id", false)]),
        .init(name: "idx_posts_created_at", table: "posts", keys: [("created_at", true)]),
        .init(name: "idx_posts_user_created", table: "posts", keys: [("user_id", false), ("created_at", true)]),
        .init(name: "idx_posts_visibility", table: "posts", keys: [("visibility", false)]),
        .init(name: "idx_users_journey_state", table: "users", keys: [("customer_journey_state", false)]),
        .init(name: "idx_users_email", table: "users", keys: [("email", false)]),
        .init(name: "idx_users_city_country", table: "users", keys: [("city", false), ("country", false)]),
        .init(name: "idx_follows_follower", table: "follows", keys: [("follower_id", false)]),
        .init(name: "idx_follows_following", table: "follows", keys: [("following_id", false)]),
        .init(name: "idx_follows_pair", table: "follows", keys: [("follower_id", false), ("following_id", false)]),
        .init(name: "idx_events_start_date", table: "events", keys: [("start_date", false)]),
        .init(name: "idx_events_organizer", table: "events", keys: [("organizer_id", false)]),
        .init(name: "idx_events_city", table: "events", keys: [("city", false)]),
        .init(name: "idx_event_rsvps_user", table: "event_rsvps", keys: [("user_id", false)]),
        .init(name: "idx_event_rsvps_event", table: "event_rsvps", keys: [("event_id", false)]),
    ]

    /// The name of an existing index equivalent to the one wanted: a valid btree index on the same
    /// table whose key columns are the same columns in the same order, each with the same direction
    /// and default null order (`indoption`), the column's own collation and the type's default
    /// operator class; not partial and not on an expression. Extra `INCLUDE` columns and uniqueness
    /// do not matter. Binds: table name, column names (`text[]`), options (`int2[]`: 3 for DESC, 0 for ASC).
    static let equivalentIndexSQL = """
        SELECT c.relname::text
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_am am ON am.oid = c.relam
        WHERE i.indrelid = to_regclass(quote_ident($1))
          AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
          AND i.indnkeyatts = cardinality($2::text[])
          AND ARRAY(SELECT a.attname::text
                    FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, position)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE k.position <= i.indnkeyatts ORDER BY k.position) = $2::text[]
          AND ARRAY(SELECT o.option FROM unnest(i.indoption::int2[]) WITH ORDINALITY o(option, position)
                    WHERE o.position <= i.indnkeyatts ORDER BY o.position) = $3::int2[]
          AND NOT EXISTS (
                SELECT 1
                FROM unnest(i.indkey::int2[], i.indcollation::oid[], i.indclass::oid[]) WITH ORDINALITY k(attnum, coll, opclass, position)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                JOIN pg_opclass opc ON opc.oid = k.opclass
                WHERE k.position <= i.indnkeyatts
                  AND (k.coll IS DISTINCT FROM a.attcollation
                       OR NOT opc.opcdefault))
        ORDER BY i.indisunique DESC, c.relname
        LIMIT 1
        """

    /// `follower_count` filled, and the triggers that keep it exact for every writer: a follow
    /// inserted, deleted, or moved to another user; `follows` truncated; and a user row inserted
    /// (or upserted, or re-inserted after a delete) after its follows, which recounts.
    static let followerCountSQL: [String] = [
        "UPDATE users SET follower_count = (SELECT count(*) FROM follows f WHERE f.following_id = users.id)",
        """
        CREATE OR REPLACE FUNCTION journey_follows_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                UPDATE users SET follower_count = follower_count - 1 WHERE id = OLD.following_id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                UPDATE users SET follower_count = follower_count + 1 WHERE id = NEW.following_id;
            END IF;
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE OR REPLACE FUNCTION journey_follows_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE users SET follower_count = 0 WHERE follower_count <> 0;
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE OR REPLACE FUNCTION journey_users_recount() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.follower_count := (SELECT count(*) FROM follows f WHERE f.following_id = NEW.id);
            RETURN NEW;
        END
        $$
        """,
        "CREATE TRIGGER journey_follows_insert AFTER INSERT ON follows FOR EACH ROW EXECUTE FUNCTION journey_follows_count()",
        "CREATE TRIGGER journey_follows_delete AFTER DELETE ON follows FOR EACH ROW EXECUTE FUNCTION journey_follows_count()",
        """
        CREATE TRIGGER journey_follows_update AFTER UPDATE OF following_id ON follows FOR EACH ROW
        WHEN (OLD.following_id IS DISTINCT FROM NEW.following_id) EXECUTE FUNCTION journey_follows_count()
        """,
        "CREATE TRIGGER journey_follows_truncate AFTER TRUNCATE ON follows FOR EACH STATEMENT EXECUTE FUNCTION journey_follows_truncated()",
        "CREATE TRIGGER journey_users_insert BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION journey_users_recount()",
        """
        CREATE TRIGGER journey_users_id_update BEFORE UPDATE OF id ON users FOR EACH ROW
        WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION journey_users_recount()
        """,
    ]

    /// The triggers of ``followerCountSQL``, with their tables. A platform that drops and creates
    /// `follows` or `users` again loses them: `doctor` names them, and `migrate` makes them again
    /// and recounts (``Pool/repairFollowerCount(_:report:)``).
    static let followerCountTriggers: [(name: String, table: String)] = [
        ("journey_follows_insert", "follows"), ("journey_follows_delete", "follows"), ("journey_follows_update", "follows"),
        ("journey_follows_truncate", "follows"), ("journey_users_insert", "users"), ("journey_users_id_update", "users"),
    ]

    /// The triggers of ``followerCountTriggers`` that do not exist.
    static func missingFollowerCountTriggers(_ connection: PostgresConnection, _ logger: Logger) async throws -> [(name: String, table: String)] {
        var present = Set<String>()
        for try await name in try await connection.query(
            """
            SELECT t.tgname::text FROM pg_trigger t
            WHERE t.tgrelid IN (to_regclass('follows'), to_regclass('users')) AND NOT t.tgisinternal
            """, logger: logger
        ).decode(String.self) {
            present.insert(name)
        }
        return followerCountTriggers.filter { !present.contains($0.name) }
    }

    /// How Journey writes the two journey columns of a platform's own `users` table, as it declared
    /// them: a stage column of an enum type takes the stage cast to that type (a stage the enum
    /// lacks is then refused for that user alone, class 22), and a `last_journey_update` of a text
    /// type takes canonical UTC text (SPEC §8), not PostgreSQL's own rendering of a timestamp.
    struct UserColumnWrites: Sendable {
        /// `::type` for an enum stage column, else empty.
        var stageCast = ""
        /// Whether `last_journey_update` holds text.
        var lastUpdateIsText = false

        /// Reads the columns' types from the catalog.
        static func read(_ connection: PostgresConnection, _ logger: Logger) async throws -> UserColumnWrites {
            var writes = UserColumnWrites()
            for try await (column, type, kind, category) in try await connection.query(
                """
                SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typtype::text, t.typcategory::text
                FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attrelid = to_regclass('users') AND a.attname IN ('customer_journey_state', 'last_journey_update')
                  AND NOT a.attisdropped
                """, logger: logger
            ).decode((String, String, String, String).self) {
                if column == "customer_journey_state" && kind == "e" { writes.stageCast = "::" + type }
                if column == "last_journey_update" && category == "S" { writes.lastUpdateIsText = true }
            }
            return writes
        }

        /// `instant` (SQL of a `timestamptz`) as the column stores it.
        func lastUpdate(_ instant: String) -> String {
            lastUpdateIsText ? "to_char((\(instant)) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')" : instant
        }
    }

    /// The journey's own tables: history (with the feed's NOTIFY), pins, batch runs and their shards.
    static let journeyTablesSQL: [String] = [
        """
        CREATE TABLE journey_transitions (
            id bigserial PRIMARY KEY,
            user_id bigint NOT NULL,
            seq integer NOT NULL CHECK (seq >= 1),
            from_state text NOT NULL,
            to_state text NOT NULL CHECK (to_state <> from_state),
            reason text NOT NULL,
            rules_version text NOT NULL,
            metrics jsonb NOT NULL CHECK (jsonb_typeof(metrics) = 'object'),
            source text NOT NULL CHECK (source IN ('api', 'cli', 'batch')),
            created_at timestamptz NOT NULL,
            UNIQUE (user_id, seq))
        """,
        "CREATE INDEX idx_journey_transitions_created ON journey_transitions (created_at)",
        """
        CREATE FUNCTION journey_transitions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('\(feedChannel)', (SELECT max(id) FROM inserted)::text);
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER journey_transitions_notify AFTER INSERT ON journey_transitions
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION journey_transitions_notify()
        """,
        """
        CREATE TABLE journey_pins (
            user_id bigint PRIMARY KEY,
            stage text NOT NULL,
            reason text NOT NULL CHECK (length(reason) > 0),
            created_at timestamptz NOT NULL)
        """,
        """
        CREATE TABLE journey_batch_runs (
            id bigserial PRIMARY KEY,
            started_at timestamptz NOT NULL,
            finished_at timestamptz,
            status text NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
            rules_version text NOT NULL,
            shard_count integer NOT NULL CHECK (shard_count >= 0),
            users_seen bigint NOT NULL DEFAULT 0,
            transitions bigint NOT NULL DEFAULT 0,
            error text)
        """,
        "CREATE UNIQUE INDEX journey_batch_runs_one_running ON journey_batch_runs ((true)) WHERE status = 'running'",
        """
        CREATE TABLE journey_batch_shards (
            run_id bigint NOT NULL REFERENCES journey_batch_runs (id) ON DELETE CASCADE,
            shard integer NOT NULL CHECK (shard >= 0),
            low_id bigint NOT NULL,
            high_id bigint NOT NULL CHECK (high_id >= low_id),
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'done')),
            owner text,
            lease_expires_at timestamptz,
            last_user_id bigint,
            users_seen bigint NOT NULL DEFAULT 0,
            transitions bigint NOT NULL DEFAULT 0,
            finished_at timestamptz,
            PRIMARY KEY (run_id, shard))
        """,
    ]

    /// The channel `journey_transitions` inserts notify, with the largest new id as payload.
    static let feedChannel = "journey_transitions"

    /// The channel every change a follower of the database cares about notifies (SPEC §9): a move,
    /// a pin event, an adoption. The payload is the table's name; a listener re-reads the tables.
    static let changesChannel = "journey_changes"

    /// The advisory lock a `journey_pin_events` insert holds until its commit, so that event ids are
    /// handed out in commit order, as transition ids are (``PostgresStore/feedLockKey``).
    static let pinEventsLockKey: Int64 = 0x6A6F_7572_6E65_70

    /// The batch lease of the protocol (one `running` run holding a lease for an owner token, as in
    /// SQLite) on the same table as the sharded runs: a run with an `owner` is a single-process run
    /// leased as a whole; a run without one is sharded, and its shards hold the leases. `holder` says
    /// who runs it, `last_user_id` where a single run has come; a run whose lease expired is
    /// `interrupted` by the next one.
    static let batchLeaseSQL: [String] = [
        """
        ALTER TABLE journey_batch_runs
            ADD COLUMN owner text,
            ADD COLUMN holder text,
            ADD COLUMN lease_expires_at timestamptz,
            ADD COLUMN last_user_id bigint,
            ALTER COLUMN shard_count SET DEFAULT 0,
            DROP CONSTRAINT journey_batch_runs_status_check,
            ADD CONSTRAINT journey_batch_runs_status_check CHECK (status IN ('running', 'finished', 'failed', 'interrupted'))
        """
    ]

    /// `journey_pin_events`: one row per pin, re-pin or unpin, written by a trigger on `journey_pins`
    /// whoever writes it, in id order of commit (an advisory lock); moves notify the changes channel
    /// too, so that one `LISTEN` hears every change the feed reads.
    static let pinEventsSQL: [String] = [
        """
        CREATE TABLE journey_pin_events (
            id bigserial PRIMARY KEY,
            user_id bigint NOT NULL,
            pinned boolean NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE FUNCTION journey_pins_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(\(pinEventsLockKey));
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                INSERT INTO journey_pin_events (user_id, pinned) VALUES (OLD.user_id, false);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO journey_pin_events (user_id, pinned) VALUES (NEW.user_id, true);
            END IF;
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER journey_pins_event AFTER INSERT OR UPDATE OR DELETE ON journey_pins
        FOR EACH ROW EXECUTE FUNCTION journey_pins_event()
        """,
        """
        CREATE FUNCTION journey_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('\(changesChannel)', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER journey_pin_events_notify AFTER INSERT ON journey_pin_events
        FOR EACH STATEMENT EXECUTE FUNCTION journey_changes_notify()
        """,
        """
        CREATE TRIGGER journey_transitions_changes_notify AFTER INSERT ON journey_transitions
        FOR EACH STATEMENT EXECUTE FUNCTION journey_changes_notify()
        """,
    ]

    /// `journey_rules`: every adopted rule set (version, YAML text, file, time); the highest id is in force.
    static let adoptedRulesSQL: [String] = [
        """
        CREATE TABLE journey_rules (
            id bigserial PRIMARY KEY,
            version text NOT NULL,
            text text NOT NULL,
            source text NOT NULL,
            adopted_at timestamptz NOT NULL)
        """,
        """
        CREATE TRIGGER journey_rules_notify AFTER INSERT ON journey_rules
        FOR EACH STATEMENT EXECUTE FUNCTION journey_changes_notify()
        """,
    ]
}

extension Pool {
    /// Brings the database up to date (SPEC §3 on PostgreSQL): on an empty database it creates the
    /// whole schema; on the platform's own it adds what is missing without losing a row. Running it
    /// again does nothing (``MigrationReport/nothingToDo``).
    ///
    /// Each step runs in a transaction of its own under the migrations' advisory lock, and is
    /// recorded in `journey_migrations` in that transaction: two processes migrating at once wait for
    /// each other, and the second finds the first's steps done.
    ///
    /// - parameter now: the migration time, written as `last_journey_update` where `created_at` is missing.
    /// - returns: what was done.
    /// - throws: ``StorageError``; the failing step is rolled back whole and the earlier ones stay.
    func migrate(now: Date) async throws(StorageError) -> MigrationReport {
        try await transaction { connection in
            try await Self.lock(connection, self.logger)
            try await Self.checkPlatformTables(connection, self.logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS journey_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)
                """, logger: self.logger)
        }
        var report = MigrationReport()
        for step in PostgresMigrations.steps {
            report = try await transaction { connection in
                var report = report
                try await Self.lock(connection, self.logger)
                let done = try await connection.query("SELECT 1 FROM journey_migrations WHERE name = \(step)", logger: self.logger).collect()
                guard done.isEmpty else { return report }
                try await self.run(step, connection, now: now, report: &report)
                try await connection.query("INSERT INTO journey_migrations (name, applied_at) VALUES (\(step), \(now))", logger: self.logger)
                report.migrationsApplied.append(step)
                return report
            }
        }
        return try await transaction { connection in
            var report = report
            try await Self.lock(connection, self.logger)
            try await self.repairFollowerCount(connection, report: &report)
            return report
        }
    }

    /// Makes the triggers of ``PostgresMigrations/followerCountTriggers`` again where any is
    /// missing (the platform dropped and created `follows` or `users` again), and recounts every
    /// `follower_count`; does nothing when all are there.
    private func repairFollowerCount(_ connection: PostgresConnection, report: inout MigrationReport) async throws {
        let missing = try await PostgresMigrations.missingFollowerCountTriggers(connection, logger)
        guard !missing.isEmpty else { return }
        for (name, table) in PostgresMigrations.followerCountTriggers {
            try await connection.query(PostgresQuery(unsafeSQL: "DROP TRIGGER IF EXISTS \(name) ON \(table)"), logger: logger)
        }
        for sql in PostgresMigrations.followerCountSQL { try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
        report.triggersCreated += missing.map(\.name)
    }

    /// Takes the migrations' advisory lock until the transaction ends.
    private static func lock(_ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresMigrations.lockKey))", logger: logger)
    }

    /// Runs one step's statements on `connection`, inside its transaction.
    private func run(_ step: String, _ connection: PostgresConnection, now: Date, report: inout MigrationReport) async throws {
        func execute(_ sql: String) async throws {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
        switch step {
        case "v1 platform tables":
            let existing = try await Self.existingTables(connection, logger)
            for (table, sql) in PostgresMigrations.platformTablesSQL where !existing.contains(table) {
                try await execute(sql)
                report.tablesCreated.append(table)
            }
        case "v1 timestamp functions":
            for sql in PostgresTimestampSQL.functions { try await execute(sql) }
        case "v1 journey columns":
            var columns = Set<String>()
            for try await name in try await connection.query(
                """
                SELECT attname::text FROM pg_attribute
                WHERE attrelid = to_regclass('users') AND attnum > 0 AND NOT attisdropped
                """, logger: logger
            ).decode(String.self) {
                columns.insert(name)
            }
            for (column, sql) in PostgresMigrations.journeyColumnsSQL where !columns.contains(column) {
                try await execute(sql)
                report.columnsAdded.append("users.\(column)")
            }
            let signup = columns.contains("created_at") ? "to_timestamp(journey_instant(created_at))" : "NULL"
            let writes = try await PostgresMigrations.UserColumnWrites.read(connection, logger)
            var binds = PostgresBindings()
            binds.append(now)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE users SET last_journey_update = \(writes.lastUpdate("COALESCE(\(signup), $1)")) WHERE last_journey_update IS NULL
                        """, binds: binds), logger: logger)
        case "v1 platform indexes":
            // An index on a column the platform lacks is skipped, not an error: none of the
            // metrics' columns (checked before migrating) is one.
            let tableColumns = Dictionary(uniqueKeysWithValues: try await Self.platformTables(connection, logger).map { ($0.name, $0.columns) })
            for index in PostgresMigrations.platformIndexes {
                let columns = index.keys.map(\.column)
                let missing = columns.filter { !(tableColumns[index.table]?.contains($0) ?? false) }
                guard missing.isEmpty else {
                    report.indexesSkipped.append(
                        .init(name: index.name, keys: "\(index.table)(\(columns.joined(separator: ", ")))", missing: missing.map { "\(index.table).\($0)" }))
                    continue
                }
                let options = index.keys.map { Int16($0.descending ? 3 : 0) }
                let found = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: PostgresMigrations.equivalentIndexSQL,
                        binds: {
                            var binds = PostgresBindings()
                            binds.append(index.table)
                            binds.append(columns)
                            binds.append(options)
                            return binds
                        }()), logger: logger
                ).collect()
                if let existing = try found.first?.decode(String.self) {
                    if existing != index.name {
                        report.indexesReused.append(.init(wanted: index.name, existing: existing, keys: "\(index.table)(\(columns.joined(separator: ", ")))"))
                    }
                    continue
                }
                let nameTaken = try await !connection.query("SELECT 1 FROM pg_class WHERE relname = \(index.name)", logger: logger).collect().isEmpty
                let name = nameTaken ? "journey_" + index.name : index.name
                try await execute(PostgresMigrations.IndexSpec(name: name, table: index.table, keys: index.keys).sql)
                report.indexesCreated.append(name)
            }
        case "v1 follower count":
            for sql in PostgresMigrations.followerCountSQL { try await execute(sql) }
            report.triggersCreated += [
                "journey_follows_insert", "journey_follows_delete", "journey_follows_update",
                "journey_follows_truncate", "journey_users_insert", "journey_users_id_update",
            ]
        case "v1 journey tables":
            for sql in PostgresMigrations.journeyTablesSQL { try await execute(sql) }
            report.tablesCreated += ["journey_transitions", "journey_pins", "journey_batch_runs", "journey_batch_shards"]
            report.indexesCreated += ["idx_journey_transitions_created"]
            report.triggersCreated += ["journey_transitions_notify"]
        case "v2 batch lease":
            for sql in PostgresMigrations.batchLeaseSQL { try await execute(sql) }
            report.columnsAdded += ["owner", "holder", "lease_expires_at", "last_user_id"].map { "journey_batch_runs.\($0)" }
        case "v2 pin events":
            for sql in PostgresMigrations.pinEventsSQL { try await execute(sql) }
            report.tablesCreated.append("journey_pin_events")
            report.triggersCreated += ["journey_pins_event", "journey_pin_events_notify", "journey_transitions_changes_notify"]
        case "v2 adopted rules":
            for sql in PostgresMigrations.adoptedRulesSQL { try await execute(sql) }
            report.tablesCreated.append("journey_rules")
            report.triggersCreated.append("journey_rules_notify")
        default:
            preconditionFailure("no statements for migration step \(step)")
        }
    }

    /// The platform tables that exist in the connection's search path.
    private static func existingTables(_ connection: PostgresConnection, _ logger: Logger) async throws -> Set<String> {
        var existing = Set<String>()
        for table in PostgresMigrations.platformTables {
            let found = try await connection.query("SELECT to_regclass(\(table)) IS NOT NULL", logger: logger).collect()
            if try found.first?.decode(Bool.self) == true { existing.insert(table) }
        }
        return existing
    }

    /// The platform tables that exist, as ``PlatformSchema/Table``s: a view (or materialized view)
    /// as such, and a `users.id` of a type other than an integer's (`uuid`, `text`: the batch's
    /// shards and chunks are ranges of integer ids) as unfit. One read of the catalog.
    private static func platformTables(_ connection: PostgresConnection, _ logger: Logger) async throws -> [PlatformSchema.Table] {
        var tables: [String: PlatformSchema.Table] = [:]
        for try await (name, isView, column, type) in try await connection.query(
            """
            SELECT lower(c.relname::text), c.relkind IN ('v', 'm'), lower(a.attname::text), format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(\(PostgresMigrations.platformTables)::text[]) t)
              AND a.attnum > 0 AND NOT a.attisdropped
            """, logger: logger
        ).decode((String, Bool, String, String).self) {
            var table = tables[name] ?? PlatformSchema.Table(name: name, isView: isView, columns: [])
            table.columns.insert(column)
            if name == "users" && column == "id" && !["smallint", "integer", "bigint"].contains(type) {
                table.unfitColumns.append("users.id is declared \(type): Journey needs integer ids (smallint, integer or bigint)")
            }
            tables[name] = table
        }
        return Array(tables.values)
    }

    /// Throws ``PostgresStoreError/platformTablesUnfit(problems:)`` when the platform tables that
    /// exist cannot serve Journey (``PlatformSchema/problems(_:)``).
    private static func checkPlatformTables(_ connection: PostgresConnection, _ logger: Logger) async throws {
        let problems = PlatformSchema.problems(try await platformTables(connection, logger))
        if !problems.isEmpty { throw PostgresStoreError.platformTablesUnfit(problems: problems) }
    }

    /// Throws unless the platform tables exist with the columns the metrics read, and every
    /// migration step has run.
    func checkMigrated() async throws(StorageError) {
        try await withConnection { connection in
            let existing = try await Self.existingTables(connection, self.logger)
            let missingTables = PostgresMigrations.platformTables.filter { !existing.contains($0) }
            if !missingTables.isEmpty { throw PostgresStoreError.platformTablesMissing(tables: missingTables) }
            try await Self.checkPlatformTables(connection, self.logger)
            var applied = Set<String>()
            let hasTable =
                try await connection.query("SELECT to_regclass('journey_migrations') IS NOT NULL", logger: self.logger).collect().first?.decode(Bool.self)
                ?? false
            if hasTable {
                for try await name in try await connection.query("SELECT name FROM journey_migrations", logger: self.logger).decode(String.self) {
                    applied.insert(name)
                }
            }
            let missing = PostgresMigrations.steps.filter { !applied.contains($0) }
            if !missing.isEmpty { throw PostgresStoreError.notMigrated(missingSteps: missing) }
        }
    }
}
