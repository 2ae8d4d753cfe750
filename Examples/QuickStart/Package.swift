// swift-tools-version: 6.0
import PackageDescription

// The README's library snippet as a package of its own, which CI builds and runs:
// `swift run --package-path Examples/QuickStart`.
let package = Package(
    name: "QuickStart",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named, so the products below resolve whatever the clone's folder is called.
        .package(name: "Journey", path: "../.."),
        // For Setup.swift only, which writes the platform rows the snippet reads.
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
    ],
    targets: [
        .executableTarget(
            name: "QuickStart",
            dependencies: [
                .product(name: "Journey", package: "Journey"),
                .product(name: "JourneyCore", package: "Journey"),
                .product(name: "JourneySQLite", package: "Journey"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        )
    ]
)
