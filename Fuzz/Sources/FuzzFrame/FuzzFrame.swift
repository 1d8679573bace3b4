import FuzzSupport
import SyncWire

/// One received line, as `FrameDecoder` sees it, then (for a `blocks` frame) the payload as the
/// session decodes it in the OPEN state. A decoded frame must also survive a round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = fuzzBytes(data, size)
    let frame: Frame
    do {
        switch try Frame.decodeDeferringBatches(line: line) {
        case .frame(let decoded): frame = decoded
        case .batch(let raw): frame = .blocks(try raw.decode())
        case .invalid: return 0
        }
    } catch {
        report(error.description)
        return 0
    }
    report("ok \(frame.type)")
    Oracle.checkRoundTrip(frame)
    return 0
}
