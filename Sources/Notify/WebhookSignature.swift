import Crypto
import Foundation

/// The Standard Webhooks signature scheme: what a receiver checks to know a delivery is this node's.
///
/// The signed content is `"{webhook-id}.{webhook-timestamp}.{body}"`, the key is the secret's bytes
/// (the base64 after `whsec_`), and the `webhook-signature` header is `v1,` then the base64 of
/// HMAC-SHA256 over the content.
///
/// ```swift
/// let key = WebhookSignature.key(fromSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!
/// let header = WebhookSignature.sign(id: "msg_1", timestamp: 1614265330, body: #"{"test": 2432232314}"#, key: key)
/// ```
public enum WebhookSignature {
    /// The key bytes of a `whsec_…` secret, or `nil` when it is not one (24 to 64 bytes of base64).
    public static func key(fromSecret secret: String) -> [UInt8]? {
        guard secret.hasPrefix("whsec_"), let data = Data(base64Encoded: String(secret.dropFirst(6))), (24...64).contains(data.count) else { return nil }
        return Array(data)
    }

    /// The `webhook-signature` header value: `v1,BASE64`.
    public static func sign(id: String, timestamp: Int64, body: String, key: [UInt8]) -> String {
        let content = Data("\(id).\(timestamp).".utf8) + Data(body.utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}
