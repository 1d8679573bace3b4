// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "tierline",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tierline", targets: ["tierline"]),
        .library(name: "TicketModel", targets: ["TicketModel"]),
        .library(name: "TicketStore", targets: ["TicketStore"]),
        .library(name: "SyncWire", targets: ["SyncWire"]),
        .library(name: "Escalation", targets: ["Escalation"]),
        .library(name: "StrictJSON", targets: ["StrictJSON"]),
        .library(name: "Desk", targets: ["Desk"]),
        .library(name: "SyncNode", targets: ["SyncNode"]),
        .library(name: "Dashboard", targets: ["Dashboard"]),
        .library(name: "Intake", targets: ["Intake"]),
        .library(name: "Notify", targets: ["Notify"]),
        .library(name: "Workspace", targets: ["Workspace"]),
        // For the benchmark package in Benchmarks/, which generates its workload with the demo's stream.
        .library(name: "Demo", targets: ["Demo"]),
        .library(name: "FaultProxy", targets: ["FaultProxy"]),
        .library(name: "Mirror", targets: ["Mirror"]),
        .executable(name: "tierline-faultproxy", targets: ["tierline-faultproxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "TicketModel",
            dependencies: ["StrictJSON", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .target(
            name: "TicketStore",
            dependencies: [
                "TicketModel", "StrictJSON",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .target(
            name: "SyncWire",
            dependencies: [
                "TicketModel", "StrictJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strict),
        // The line protocol's channel pipeline. Apart from SyncWire because NIOExtras (its line decoder)
        // brings in NIOPosix, which SyncWire and SyncProtocol do without.
        .target(
            name: "WirePipeline",
            dependencies: ["SyncWire", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOExtras", package: "swift-nio-extras")],
            swiftSettings: strict),
        // The sync session's rules as a pure state machine: frames and answers in, actions out. No
        // sockets, no store, no clock: SyncNode's session is the I/O around it.
        .target(
            name: "SyncProtocol",
            dependencies: ["TicketModel", "SyncWire", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(
            name: "Escalation",
            dependencies: ["TicketModel", "StrictJSON", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // Strict JSON for the files people write and the wire's lines: positions, duplicate names
        // refused, did-you-mean.
        .target(name: "StrictJSON", swiftSettings: strict),
        // The application layer: one function per help-desk use case, over the store and escalation;
        // every edge (CLI, intake, node, demo) calls it. No networking.
        .target(
            name: "Desk",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "StrictJSON",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "SyncNode",
            dependencies: [
                "Desk", "TicketModel", "TicketStore", "SyncWire", "SyncProtocol", "WirePipeline", "StrictJSON", "Notify",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .target(
            name: "Dashboard",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "Intake",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "Desk", "StrictJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Sends what is in the outbox: SMTP (a small hand-written client over NIO and NIOSSL) and
        // signed webhooks (async-http-client). I/O only; which events become notices is Desk's.
        .target(
            name: "Notify",
            dependencies: [
                "TicketModel", "TicketStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // The agent workspace: the node's HTTP server for people — sign-in, sessions and roles, the
        // ticket API, the server-rendered pages and their live updates — over the Desk layer, with the
        // dashboard's and intake's routes mounted behind the same gate.
        .target(
            name: "Workspace",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "Desk", "Dashboard", "Intake", "StrictJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "Demo",
            dependencies: [
                "TicketModel", "TicketStore", "Desk", "SyncNode", "Escalation", "Dashboard", "FaultProxy", "Workspace",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        .target(
            name: "FaultProxy",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "tierline-faultproxy",
            dependencies: [
                "FaultProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // One-way live mirror of the replicated state into PostgreSQL, for organisation-wide reporting.
        .target(
            name: "Mirror",
            dependencies: [
                "TicketModel", "TicketStore", "Dashboard",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "tierline",
            dependencies: [
                "TicketModel", "TicketStore", "SyncWire", "Desk", "SyncNode", "Escalation", "Dashboard", "Intake", "Demo", "Notify", "Workspace", "Mirror",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        .target(
            name: "TestSupport",
            dependencies: ["TicketModel", "TicketStore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/TestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "TicketModelTests",
            dependencies: [
                "TicketModel", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "TicketStoreTests",
            dependencies: [
                "TicketModel", "TicketStore", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "SyncWireTests",
            dependencies: [
                "TicketModel", "SyncWire", "WirePipeline", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strict),
        // Builds without NIOPosix: the session's rules, tested without sockets.
        .testTarget(
            name: "SyncProtocolTests",
            dependencies: ["TicketModel", "SyncWire", "SyncProtocol", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(name: "StrictJSONTests", dependencies: ["StrictJSON"], swiftSettings: strict),
        .testTarget(
            name: "DeskTests",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "Desk", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "EscalationTests",
            dependencies: ["TicketModel", "Escalation", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "SyncNodeTests",
            dependencies: [
                "TicketModel", "TicketStore", "SyncWire", "Desk", "SyncNode", "Escalation", "TestSupport", "Notify",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strict),
        .testTarget(
            name: "FaultProxyTests",
            dependencies: [
                "FaultProxy", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "IntakeTests",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "Desk", "SyncNode", "Dashboard", "Intake", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "DashboardTests",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "Desk", "Dashboard", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "WorkspaceTests",
            dependencies: [
                "TicketModel", "TicketStore", "Escalation", "Desk", "Dashboard", "Intake", "Workspace", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "MirrorTests",
            dependencies: ["Mirror", "TicketModel", "TicketStore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: strict),
        .testTarget(
            name: "NotifyTests",
            dependencies: [
                "Notify", "TicketStore", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
