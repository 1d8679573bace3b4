import FuzzSupport
import TicketModel

/// `Block(decoding:)` on arbitrary bytes; a block it accepts must be the canonical encoding of its
/// content.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBlock(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    let block: Block
    do { block = try Block(decoding: bytes) } catch {
        report(error.description)
        return 0
    }
    report("ok \(block.changes.count) changes")
    Oracle.checkCanonical(block, decodedFrom: bytes)
    return 0
}
