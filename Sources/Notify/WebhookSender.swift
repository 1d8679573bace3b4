import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where a webhook delivery goes: the URL and the key it is signed with.
public struct WebhookTarget: Sendable, Equatable {
    public var url: String
    public var key: [UInt8]
    /// What errors and logs call it (`webhook oncall`, `integration chat`): its URL's path and query
    /// may hold a token (`/services/T…/B…/SECRET`), so they show only scheme, host, port and this.
    public var name: String

    public init(url: String, key: [UInt8], name: String = "webhook") {
        self.url = url
        self.key = key
        self.name = name
    }
}

/// Posts signed webhooks (Standard Webhooks) with async-http-client.
///
/// Each request carries `webhook-id` (the outbox key: the receiver's idempotency key),
/// `webhook-timestamp` (unix seconds) and `webhook-signature` (``WebhookSignature``), with the JSON
/// body as the outbox holds it. A 2xx answer is a delivery; 408, 429, 5xx, a connection error or a
/// timeout is worth another attempt; any other status is final. Redirects are not followed: a signed
/// POST goes where the settings say or nowhere.
public struct WebhookSender: Sendable {
    let client: HTTPClient
    public var timeout: TimeAmount

    /// - Parameter client: a client made with ``makeClient()`` (the caller shuts it down).
    public init(client: HTTPClient, timeoutMillis: Int) {
        self.client = client
        self.timeout = .milliseconds(Int64(timeoutMillis))
    }

    /// The client configuration the dispatcher uses: no redirects.
    public static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        return configuration
    }

    /// Posts `body` to `target`, signed, and waits for the answer.
    /// - Parameters:
    ///   - id: the idempotency key (`webhook-id`).
    ///   - now: the time to put in `webhook-timestamp` (ms since 1970).
    /// - Throws: ``NotifyError``: `httpStatus` (transient or not by the status), `timeout`, `connection`.
    public func send(id: String, body: String, to target: WebhookTarget, now: UInt64) async throws(NotifyError) {
        let timestamp = Int64(now / 1000)
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "tierline")
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-signature", value: WebhookSignature.sign(id: id, timestamp: timestamp, body: body, key: target.key))
        request.body = .bytes(ByteBuffer(string: body))
        let status: Int
        do {
            status = try await Self.post(request, client: client, timeout: timeout)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw NotifyError(.timeout, "POST \(Self.shown(target.url, name: target.name)) got no answer within \(timeout.nanoseconds / 1_000_000) ms", transient: true)
        } catch {
            throw NotifyError(.connection, "POST \(Self.shown(target.url, name: target.name)) failed: \(error)", transient: true)
        }
        guard !(200..<300).contains(status) else { return }
        throw NotifyError(.httpStatus, "POST \(Self.shown(target.url, name: target.name)) answered HTTP \(status)", transient: Self.isRetryable(status: status))
    }

    /// Posts `request` and returns the answer's status, all within `timeout`: the connection, the
    /// answer's head and then at most 4 KiB of its body share one deadline.
    ///
    /// async-http-client's own deadline ends at the head, and a body can be dripped forever: the body
    /// is read (so the connection can be reused) in a task raced against the deadline; at the deadline
    /// or past 4 KiB the read is cancelled (the connection is dropped) and the status stands, since the
    /// receiver gave its answer with the head.
    static func post(_ request: HTTPClientRequest, client: HTTPClient, timeout: TimeAmount) async throws -> Int {
        let deadline = NIODeadline.now() + timeout
        let response = try await client.execute(request, deadline: deadline)
        let status = Int(response.status.code)
        let remaining = deadline - NIODeadline.now()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await response.body.collect(upTo: 4 << 10) }
            group.addTask { try? await Task.sleep(for: .nanoseconds(max(remaining.nanoseconds, 0))) }
            await group.next()
            group.cancelAll()
        }
        return status
    }

    /// Whether a delivery answered with `status` is worth another attempt: 408, 429 and 5xx.
    public static func isRetryable(status: Int) -> Bool { status == 408 || status == 429 || (500..<600).contains(status) }

    /// A URL for an error message: scheme, host and port, and the webhook's name; never the path,
    /// the query or user info, which may hold a token (`https://hooks.example.org:443 (webhook oncall)`).
    static func shown(_ url: String, name: String) -> String {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host else { return "the URL of \(name)" }
        let port = parts.port ?? (scheme.lowercased() == "https" ? 443 : 80)
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost):\(port) (\(name))"
    }
}
