// swift-tools-version:6.1
// tierline-bench: a package of its own, so the root `swift build` does not compile it. It reaches the
// root package only through its products, as code outside the repository would.
//
//   swift build -c release --package-path Benchmarks --disable-build-manifest-caching
//
// The flag makes SwiftPM plan the build afresh: it otherwise misses a file added to or removed from
// the root package since the last build of this one.
//   Benchmarks/.build/release/tierline-bench --help
import PackageDescription

let package = Package(
    name: "tierline-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named, so the products resolve whatever the checkout's folder is called.
        .package(name: "tierline", path: ".."),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "tierline-bench",
            dependencies: [
                .product(name: "TicketModel", package: "tierline"),
                .product(name: "TicketStore", package: "tierline"),
                .product(name: "SyncWire", package: "tierline"),
                .product(name: "Desk", package: "tierline"),
                .product(name: "SyncNode", package: "tierline"),
                .product(name: "Escalation", package: "tierline"),
                .product(name: "Dashboard", package: "tierline"),
                .product(name: "Demo", package: "tierline"),
                .product(name: "Workspace", package: "tierline"),
                .product(name: "Intake", package: "tierline"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            path: "tierline-bench",
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
