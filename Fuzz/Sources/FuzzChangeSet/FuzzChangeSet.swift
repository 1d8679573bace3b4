import Foundation
import FuzzSupport
import SyncWire
import TicketModel

/// The change-set decoder (`ChangeSet.decode(base64:count:size:)`, `Protocol/PROTOCOL.md` §2.3).
///
/// Input layout (see `Fuzz/README.md`):
///
/// | bytes | meaning |
/// |---|---|
/// | 0 | flags: bit 0 the payload is the inflated change set (wrapped here in a stored zlib stream), else the zlib stream itself; bit 1 the payload is the `data` text as is; bit 2 decode through a whole `blocks` frame line; bit 3 also send `keys` for `north`; bit 4 take `size` from the header even for an inflated change set |
/// | 1–2 | `count`, signed 16-bit big-endian |
/// | 3–6 | `size`, signed 32-bit big-endian |
/// | 7… | the payload |
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangeSet(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzBytes(data, size)
    guard input.count >= 7 else { return 0 }
    let flags = input[0]
    let isRaw = flags & 1 != 0, isText = flags & 2 != 0, viaFrame = flags & 4 != 0
    let withKeys = flags & 8 != 0, headerSize = flags & 16 != 0
    let count = Int(Int16(bitPattern: UInt16(input[1]) << 8 | UInt16(input[2])))
    let declared = Int(Int32(bitPattern: UInt32(input[3]) << 24 | UInt32(input[4]) << 16 | UInt32(input[5]) << 8 | UInt32(input[6])))
    let payload = input[7...]

    let text: String
    var batchSize = declared
    if isText {
        text = String(decoding: payload, as: UTF8.self)
    } else if isRaw {
        text = Data(StoredZlib.wrap(payload)).base64EncodedString()
        if !headerSize { batchSize = payload.count }
    } else {
        text = Data(payload).base64EncodedString()
    }

    let blocks: [Block]
    if viaFrame {
        let keys = withKeys ? #","keys":{"north":"\#(String(repeating: "ab", count: 32))"}"# : ""
        let line = #"{"type":"blocks","batch":1,"count":\#(count),"size":\#(batchSize),"data":"\#(text)"\#(keys)}"#
        do {
            guard case .blocks(let batch) = try Frame.decode(line: Array(line.utf8)) else { oracleFailure("a blocks line decodes to another frame") }
            blocks = batch.blocks
        } catch {
            report("frame \(error)")
            return 0
        }
    } else {
        do { blocks = try ChangeSet.decode(base64: text, count: count, size: batchSize) } catch {
            report(error.description)
            return 0
        }
    }
    report("ok \(blocks.count) blocks\(viaFrame ? " in a frame" : "")")
    guard blocks.count == count else { oracleFailure("\(blocks.count) blocks decoded; the batch declares \(count)") }
    let changeSet = Oracle.changeSet(blocks)
    guard changeSet.count == batchSize else { oracleFailure("the blocks make \(changeSet.count) bytes; the batch declares \(batchSize)") }
    if isRaw && !isText && !changeSet.elementsEqual(payload) { oracleFailure("the decoded blocks are not the change set given") }
    return 0
}
