// swift-tools-version: 6.0
// The libFuzzer target for the rules loader, a package of its own so that the library's
// users and `swift test` never build it. Run it with scripts/fuzz-rules.sh.
import PackageDescription

let package = Package(
    name: "JourneyFuzz",
    dependencies: [.package(name: "Journey", path: "..")],
    targets: [
        .executableTarget(
            name: "RulesFuzzer",
            dependencies: [.product(name: "JourneyCore", package: "Journey")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    ]
)
