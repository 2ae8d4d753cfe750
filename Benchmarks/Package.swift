// swift-tools-version: 6.0
import PackageDescription

// The benchmarks: a package of its own, so that the library's users and `swift test` never build it.
//
//     swift run -c release --package-path Benchmarks journey-bench           # everything (100k and 1M users)
//     swift run -c release --package-path Benchmarks journey-bench --quick   # ~2,000 users, for CI
//     swift run -c release --package-path Benchmarks journey-bench postgres --url postgresql://…   # PostgreSQL
let package = Package(
    name: "JourneyBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named, so the products resolve whatever the clone's folder is called.
        .package(name: "Journey", path: "../"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        // The PostgreSQL section talks to the server directly too (the platform's separate counts).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "journey-bench",
            dependencies: [
                // The seeded platform data generator of Fixtures/Generator.
                .product(name: "JourneyFixtures", package: "Journey"),
                .product(name: "Journey", package: "Journey"),
                .product(name: "JourneyCore", package: "Journey"),
                .product(name: "JourneySQLite", package: "Journey"),
                .product(name: "JourneyPostgres", package: "Journey"),
                .product(name: "JourneyStorage", package: "Journey"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // The raw C API of the same libsqlite3 GRDB links (GRDB's system-library module).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            path: "Sources/JourneyBench"
        ),
    ]
)
