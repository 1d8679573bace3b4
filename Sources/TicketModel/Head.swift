/// The newest block a store holds of one origin: its seq and hash (the `heads` frame, PROTOCOL §2.2.12).
/// Equal vectors with a different head at some origin mean two histories of that origin.
public struct Head: Sendable, Equatable {
    public var seq: UInt64
    public var hash: [UInt8]

    public init(seq: UInt64, hash: [UInt8]) {
        self.seq = seq
        self.hash = hash
    }
}
