import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Workspace

@Suite struct SignInThrottleTests {
    @Test func tenFailuresStopANameUntilTheWindowPasses() {
        let throttle = SignInThrottle(maxFailures: 10, windowMillis: 300_000, maxConcurrent: 2)
        for i in 0..<10 {
            #expect(throttle.begin("mia", now: 1000 + Int64(i)))
            throttle.finish("mia", failed: true, now: 1000 + Int64(i))
        }
        #expect(!throttle.begin("mia", now: 2000))
        // Another name is not held back by mia's failures.
        #expect(throttle.begin("ada", now: 2000))
        throttle.finish("ada", failed: false, now: 2000)
        // The window counts from each failure: the first leaves it 300 s after it happened.
        #expect(!throttle.begin("mia", now: 1000 + 300_000 - 1))
        #expect(throttle.begin("mia", now: 1000 + 300_000))
        throttle.finish("mia", failed: false, now: 1000 + 300_000)
    }

    @Test func atMostMaxConcurrentChecksRunAtOnce() {
        let throttle = SignInThrottle(maxConcurrent: 2)
        #expect(throttle.begin("mia", now: 0))
        #expect(throttle.begin("ada", now: 0))
        #expect(!throttle.begin("leo", now: 0))
        throttle.finish("mia", failed: false, now: 1)
        #expect(throttle.begin("leo", now: 1))
        throttle.finish("ada", failed: false, now: 1)
        throttle.finish("leo", failed: false, now: 1)
        #expect(throttle.begin("kim", now: 2) && throttle.begin("kim", now: 2))
    }

    @Test func aFloodOfInventedNamesIsBoundedInMemory() {
        let throttle = SignInThrottle(windowMillis: 300_000, maxNames: 100)
        for i in 0..<1000 {
            let name = "guess-\(i)-" + String(repeating: "x", count: 10_000)
            #expect(throttle.begin(name, now: Int64(i)))
            throttle.finish(name, failed: true, now: Int64(i))
        }
        #expect(throttle.trackedNames <= 100)
        // The latest names are the ones remembered.
        let last = "guess-999-" + String(repeating: "x", count: 10_000)
        for _ in 0..<9 {
            #expect(throttle.begin(last, now: 2000))
            throttle.finish(last, failed: true, now: 2000)
        }
        #expect(!throttle.begin(last, now: 2001))
    }

    @Test func theSignInFormAnswers429AfterTenFailures() async throws {
        let fixture = try await GateFixture()
        try await fixture.test { client in
            let headers = headers([.contentType: "application/x-www-form-urlencoded"])
            for _ in 0..<10 {
                try await client.execute(uri: "/login", method: .post, headers: headers,
                                         body: form([("name", "mia"), ("password", "a wrong guess")])) { response in
                    #expect(response.status == .unauthorized)
                }
            }
            // Now even the right password waits: the guesser cannot tell.
            try await client.execute(uri: "/login", method: .post, headers: headers,
                                     body: form([("name", "mia"), ("password", GateFixture.password)])) { response in
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.setCookie] == nil)
                #expect(String(buffer: response.body).contains("Too many sign-in attempts"))
            }
            // Another agent signs in as usual.
            try await client.execute(uri: "/login", method: .post, headers: headers,
                                     body: form([("name", "ada"), ("password", GateFixture.password)])) { response in
                #expect(response.status == .seeOther)
            }
        }
    }
}
