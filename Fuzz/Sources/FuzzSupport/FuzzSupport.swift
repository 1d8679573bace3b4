import Foundation
import SyncWire
import TicketModel

/// Whether to print what the decoder made of each input. Set `FUZZ_REPORT=1` and pass files to a
/// target (`FUZZ_REPORT=1 Fuzz/.build/release/FuzzBlock Fuzz/work/corpus/FuzzBlock/*`) to sort a
/// corpus or a crash folder by outcome; libFuzzer prints `Running: FILE` before each.
public let isReporting = ProcessInfo.processInfo.environment["FUZZ_REPORT"] != nil

/// Prints `outcome` when ``isReporting``.
public func report(_ outcome: @autoclosure () -> String) {
    // stderr, unbuffered, so each line follows libFuzzer's `Running:` line for its input.
    if isReporting { FileHandle.standardError.write(Data("outcome: \(outcome())\n".utf8)) }
}

/// The input libFuzzer hands to `LLVMFuzzerTestOneInput`, as a collection of bytes (empty when
/// libFuzzer passes no buffer).
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeBufferPointer<UInt8> {
    guard let data, size > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: data, count: size)
}

/// A broken invariant: traps, so libFuzzer records the input as a crash.
public func oracleFailure(_ message: String) -> Never {
    fatalError("fuzz oracle: \(message)")
}

/// A minimal zlib writer (RFC 1950) that stores its input in uncompressed DEFLATE blocks, so a
/// harness can hand the fuzzer's bytes to the change-set decoder as the inflated change set.
public enum StoredZlib {
    public static func wrap(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let input = Array(bytes)
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(start + 65_535, input.count)
            let length = UInt16(end - start)
            out.append(end == input.count ? 1 : 0)  // BFINAL, BTYPE 00 (stored)
            out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8)]
            out += input[start..<end]
            start = end
        } while start < input.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in input {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        let adler = b << 16 | a
        out += [UInt8(adler >> 24), UInt8(adler >> 16 & 0xff), UInt8(adler >> 8 & 0xff), UInt8(adler & 0xff)]
        return out
    }
}

/// Properties every successful decode must have. A decoder that accepts bytes is checked against
/// the encoder: the protocol gives each block exactly one encoding (`Protocol/PROTOCOL.md` §1), and
/// a decoded frame must survive being written and read again.
public enum Oracle {
    /// A fixed key: signatures are not what is checked here, only the body's encoding.
    static let key = try! SiteKey(rawRepresentation: [UInt8](repeating: 7, count: 32))

    /// `block` was decoded from `input`: its bytes are the input, and encoding its content again
    /// gives the same body.
    public static func checkCanonical(_ block: Block, decodedFrom input: some Collection<UInt8>) {
        guard block.bytes.elementsEqual(input) else { oracleFailure("a decoded block's bytes differ from its input") }
        let again: Block
        do {
            again = try Block.make(origin: block.origin, seq: block.seq, hlc: block.hlc, deps: block.deps,
                                   changes: block.changes, key: key)
        } catch {
            oracleFailure("a decoded block does not encode again: \(error)")
        }
        guard again.body == block.body else { oracleFailure("a block decoded from a non-canonical encoding") }
    }

    /// The change set `blocks` make, as `Protocol/PROTOCOL.md` §2.3 lays it out.
    public static func changeSet(_ blocks: [Block]) -> [UInt8] {
        var w = ByteWriter()
        for block in blocks {
            w.uvarint(UInt64(block.bytes.count))
            w.raw(block.bytes)
        }
        return w.bytes
    }

    /// A decoded frame, written with ``Frame/encodeLine()``, decodes to the same frame.
    public static func checkRoundTrip(_ frame: Frame) {
        let line = frame.encodeLine()
        let again: Frame
        do { again = try Frame.decode(line: line) } catch {
            oracleFailure("a decoded \(frame.type) frame fails to decode once written again: \(error)")
        }
        guard comparable(again) == comparable(frame) else {
            oracleFailure("a decoded \(frame.type) frame decodes differently once written again")
        }
    }

    /// The frame without what depends on how it was written (a batch's base64 length).
    static func comparable(_ frame: Frame) -> Frame {
        guard case .blocks(var batch) = frame else { return frame }
        batch.wireBytes = 0
        return .blocks(batch)
    }
}
