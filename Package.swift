// swift-tools-version: 6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // An import is internal unless it says `public import`: a module's public face names what it exposes.
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Journey",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "JourneyCore", targets: ["JourneyCore"]),
        .library(name: "JourneyStorage", targets: ["JourneyStorage"]),
        .library(name: "JourneySQLite", targets: ["JourneySQLite"]),
        .library(name: "Journey", targets: ["Journey"]),
        .library(name: "JourneyFixtures", targets: ["JourneyFixtures"]),
        // PostgreSQL (SPEC §10): a product of its own too, for a host that opens PostgresStore itself.
        .library(name: "JourneyPostgres", targets: ["JourneyPostgres"]),
        .executable(name: "journey", targets: ["JourneyCLI"]),
    ],
    // PostgreSQL (SPEC §10) is a trait, on by default: `journey` and the service open
    // `postgresql://` URLs. A host that wants SQLite alone depends on the package with `traits: []`
    // and never builds postgres-nio.
    traits: [
        .trait(name: "PostgreSQL", description: "Open postgresql:// URLs with JourneyPostgres (builds postgres-nio)."),
        .default(enabledTraits: ["PostgreSQL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // `swift package generate-documentation --target Journey` (Sources/Journey/Journey.docc); a
        // command plugin only, built on demand: it adds nothing to the library's build.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", exact: "1.5.0"),
    ],
    targets: [
        // Pure domain: stages, rules, criteria, evaluation. No database, no files.
        .target(
            name: "JourneyCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: upcoming
        ),
        // The storage protocol the service talks to: its records and its error, no database.
        .target(name: "JourneyStorage", dependencies: ["JourneyCore"], swiftSettings: upcoming),
        // The one SQLite call Swift cannot make (`sqlite3_config` is C-variadic): SQLiteStore.turnOffMemoryStatistics().
        .target(name: "CJourneySQLite", linkerSettings: [.linkedLibrary("sqlite3")]),
        // The SQLite store behind it: migrator, metrics statements, persistence, batch lease, feed.
        .target(
            name: "JourneySQLite",
            dependencies: [
                "JourneyCore", "JourneyStorage", "CJourneySQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: upcoming
        ),
        // The PostgreSQL store: migrator, metrics statements, compare-and-set persistence, sharded
        // batch and feed on the platform's own PostgreSQL database.
        .target(
            name: "JourneyPostgres",
            dependencies: [
                "JourneyCore", "JourneyStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // The rule files of Rules/, compiled in by the EmbedRules plugin (per YAML file, its text and
        // the rule set loaded from it at build time), so the binary needs no file beside it and a
        // process parses no YAML for the default rules.
        .target(name: "JourneyRules", dependencies: ["JourneyCore"], path: "Rules", swiftSettings: upcoming, plugins: ["EmbedRules"]),
        .plugin(name: "EmbedRules", capability: .buildTool(), dependencies: ["embed-rules"]),
        .executableTarget(name: "embed-rules", dependencies: ["JourneyCore"], swiftSettings: upcoming),
        // Seeded platform data at any size, for tests, the demo and the benchmarks.
        .target(
            name: "JourneyFixtures",
            dependencies: ["JourneyCore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Fixtures/Generator",
            swiftSettings: upcoming
        ),
        // The service an API layer imports: cache, invalidation, events, metrics, logs.
        .target(
            name: "Journey",
            dependencies: [
                "JourneyCore", "JourneyStorage", "JourneySQLite", "JourneyRules", "JourneyFixtures",
                .target(name: "JourneyPostgres", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        // The command line, one file per subcommand: everything it does goes through Journey.
        .executableTarget(
            name: "JourneyCLI",
            dependencies: [
                "Journey",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // What the test targets share (a thread-safe list); no product of the package.
        .target(name: "JourneyTestSupport", path: "Tests/JourneyTestSupport", swiftSettings: upcoming),
        .testTarget(name: "JourneyCoreTests", dependencies: ["JourneyCore"], resources: [.copy("Rules")], swiftSettings: upcoming),
        .testTarget(name: "JourneySQLiteTests", dependencies: ["JourneySQLite", "JourneyStorage", "JourneyCore", "JourneyFixtures", "JourneyTestSupport", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: upcoming),
        .testTarget(
            name: "JourneyTests",
            dependencies: [
                "Journey", "JourneyStorage", "JourneySQLite", "JourneyCore", "JourneyFixtures", "JourneyRules", "JourneyTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // The contract every JourneyStore keeps, expressed through the protocol alone: each test runs once
        // per backend (SQLite; PostgreSQL too when JOURNEY_TEST_POSTGRES_URL is set).
        .testTarget(
            name: "JourneyContractTests",
            dependencies: [
                "JourneyStorage", "JourneySQLite", "JourneyPostgres", "JourneyCore", "JourneyTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // Runs against a real server when JOURNEY_TEST_POSTGRES_URL is set (scripts/postgres-test-cluster.sh).
        .testTarget(
            name: "JourneyPostgresTests",
            dependencies: [
                "JourneyPostgres", "JourneyCore", "JourneyStorage", "Journey",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        // Unit tests of the command line's own helpers (the human formats).
        .testTarget(name: "JourneyCommandTests", dependencies: ["JourneyCLI"], swiftSettings: upcoming),
        .testTarget(name: "JourneyCLITests", dependencies: ["Journey", "JourneySQLite", "JourneyCore", "JourneyFixtures", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: upcoming),
    ]
)
