import TicketModel

/// The `auth` frame's signed message (`Protocol/PROTOCOL.md` §2.6).
///
/// `"tierline-auth-v1" 0x00 ‖ receiver nonce ‖ sender nonce ‖ sender site ‖ 0x00 ‖ receiver site`: the
/// receiver's fresh nonce stops replay, and naming both sites stops a proof being reflected back.
public enum SessionAuth {
    public static func message(receiverNonce: [UInt8], senderNonce: [UInt8], sender: SiteID, receiver: SiteID) -> [UInt8] {
        Array("tierline-auth-v1".utf8) + [0] + receiverNonce + senderNonce + Array(sender.rawValue.utf8) + [0] + Array(receiver.rawValue.utf8)
    }

    /// Signs the proof this side sends.
    public static func prove(key: SiteKey, own: Hello, peer: Hello) throws -> [UInt8] {
        try key.sign(message(receiverNonce: peer.nonce, senderNonce: own.nonce, sender: own.site, receiver: peer.site))
    }

    /// Checks the peer's proof against the key in its hello.
    public static func verify(signature: [UInt8], own: Hello, peer: Hello) -> Bool {
        SiteKey.isValid(signature: signature,
                        of: message(receiverNonce: own.nonce, senderNonce: peer.nonce, sender: peer.site, receiver: own.site),
                        publicKey: peer.publicKey)
    }
}
