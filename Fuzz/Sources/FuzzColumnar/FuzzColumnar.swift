import Foundation
import FuzzSupport
import SyncWire
import TicketModel

/// The columnar change set decoder of protocol 5 (`ColumnarChangeSet.decode`, `Protocol/PROTOCOL.md`
/// §2.3.3), after inflating: what a peer's `blocks` frame reaches in a protocol-5 session.
///
/// Input layout (see `Fuzz/README.md`):
///
/// | bytes | meaning |
/// |---|---|
/// | 0–1 | `count`, unsigned 16-bit big-endian |
/// | 2 | flags: bit 0 the receiver holds every change a held entry names (its entity id is made from the change), else none |
/// | 3… | the inflated columnar change set |
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzColumnar(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzBytes(data, size)
    guard input.count >= 3 else { return 0 }
    let count = Int(UInt16(input[0]) << 8 | UInt16(input[1]))
    let holdsAll = input[2] & 1 != 0
    let payload = Array(input[3...])
    let blocks: [Block]
    do {
        blocks = try ColumnarChangeSet.decode(payload, count: count) { dots in
            dots.map { dot in holdsAll ? UUID(uuid: (UInt8(truncatingIfNeeded: dot.seq), UInt8(truncatingIfNeeded: dot.index), 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, UInt8(truncatingIfNeeded: dot.origin.rawValue.utf8.count))) : nil }
        }
    } catch {
        report(error.description)
        return 0
    }
    report("ok \(blocks.count) blocks")
    guard blocks.count == count else { oracleFailure("\(blocks.count) blocks decoded; the batch declares \(count)") }
    // The blocks taken apart again, every entity by id, come back byte for byte.
    do {
        let again = try ColumnarChangeSet.decode(try ColumnarChangeSet.encode(blocks), count: count) { $0.map { _ in nil } }
        guard again.map(\.bytes) == blocks.map(\.bytes) else { oracleFailure("the blocks do not survive a second columnar round trip") }
    } catch {
        oracleFailure("the decoded blocks do not encode and decode again: \(error)")
    }
    return 0
}
