import Notify
import Testing

@Suite struct WebhookSignatureTests {
    // The Standard Webhooks specification's example; the value was checked with Python's hmac:
    // base64(hmac.new(b64decode(secret), b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}", sha256)).
    @Test func signsTheSpecificationsExample() throws {
        let key = try #require(WebhookSignature.key(fromSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        #expect(WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: #"{"test": 2432232314}"#, key: key)
                == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    // UTF-8 body; expected value from python3 -c with hmac and the key bytes 0…31.
    @Test func signsTheBodysUTF8Bytes() throws {
        let key = try #require(WebhookSignature.key(fromSecret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
        #expect(key == Array(0..<32))
        #expect(WebhookSignature.sign(id: "test.north.1.1", timestamp: 1_700_000_000, body: #"{"subject":"Café"}"#, key: key)
                == "v1,W9wFpR6vmhhFSzUNGIJnw8FQQCTXd56i7i+kop98oVc=")
    }

    @Test func refusesWhatIsNotASecret() {
        #expect(WebhookSignature.key(fromSecret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
        #expect(WebhookSignature.key(fromSecret: "whsec_not base64!") == nil)
        #expect(WebhookSignature.key(fromSecret: "whsec_AAAA") == nil)
    }

    @Test func retriesTimeoutsThrottlingAndServerErrorsOnly() {
        for status in [408, 429, 500, 502, 503, 599] { #expect(WebhookSender.isRetryable(status: status)) }
        for status in [400, 401, 403, 404, 410, 422, 301] { #expect(!WebhookSender.isRetryable(status: status)) }
    }
}

@Suite struct BackoffTests {
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
    }

    @Test func staysWithinTheBoundsAndGrows() {
        let backoff = Backoff(minMillis: 1000, maxMillis: 60_000)
        var random = Seeded(state: 7)
        for attempt in 1...30 {
            for _ in 0..<200 {
                let delay = backoff.delay(afterAttempt: attempt, using: &random)
                #expect(delay >= 1000 && delay <= 60_000)
                let ceiling = min(60_000, 1000 << min(attempt - 1, 20))
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
        #expect(backoff.delay(afterAttempt: 1, using: &random) <= 1000)
    }

    @Test func jitters() {
        let backoff = Backoff(minMillis: 100, maxMillis: 100_000)
        var random = Seeded(state: 1)
        let delays = Set((0..<50).map { _ in backoff.delay(afterAttempt: 6, using: &random) })
        #expect(delays.count > 10)
    }
}
