// swift-tools-version: 6.0
import PackageDescription

// A package of its own, so the Journey library's users and its test build never pay for Hummingbird.
let package = Package(
    name: "JourneyServer",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named, so the products below resolve whatever the clone's folder is called
        // (a path dependency's identity is otherwise its folder name).
        .package(name: "Journey", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        // Already in Hummingbird's graph; named for `cancelOnGracefulShutdown()` on the event stream.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // /metrics: swift-metrics' backend, in Prometheus text format.
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "JourneyServer",
            dependencies: [
                // The one door: the service, its reports and errors (it re-exports JourneyCore's and
                // JourneyStorage's types); no store, no GRDB.
                .product(name: "Journey", package: "Journey"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        )
    ]
)
