import Foundation
import SyncWire
import TicketModel
import TicketStore

/// Reading lines off the wire, without sockets or a store: a `blocks` line as a sender writes it (256
/// one-ticket blocks), the largest `blocks` line the limits let through (its payload is not decoded,
/// as before the handshake), a `vector` of 200 sites and a `ping`. Each is decoded for about half a
/// second and the best of three is kept.
@MainActor func wireBench(root: String) throws {
    let key = SiteKey.generate()
    let store = try openStore(root + "/wire", site: "laptop", role: .laptop, key: key, durable: false)
    for n in 0..<256 {
        _ = try store.createTicket(TicketDraft(subject: "Ticket \(n): printer on floor \(n % 9) prints blank pages", priority: .high,
                                               customer: "customer-\(n)", tags: ["tag-\(n % 32)"], firstMessage: "Every page comes out blank (\(n))."))
    }
    let blocks = Array(try store.blocks(after: VersionVector()).prefix(256))
    let batchLine = try ChangeSet.encode(blocks, batch: 1, keys: [try SiteID("laptop"): key.publicKey]).line
    var random = SystemRandomNumberGenerator()
    let payload = Data((0..<(4 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) })
    let bigLine = Array(#"{"type":"blocks","batch":1,"count":1,"size":4194304,"data":"\#(payload.base64EncodedString())"}"#.utf8)
    let vector = VersionVector(Dictionary(uniqueKeysWithValues: (0..<200).map { (try! SiteID("site-\($0)"), UInt64($0) * 1_000_003) }))
    let vectorLine = Frame.vector(vector).encodeLine()
    let pingLine = Frame.ping(id: 7, time: 1_741_082_700_000).encodeLine()

    /// Microseconds per decode of `line`, best of three rounds of about half a second.
    func perLine(_ line: [UInt8], full: Bool) throws -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            var count = 0
            let elapsed = try timed {
                let start = DispatchTime.now().uptimeNanoseconds
                while DispatchTime.now().uptimeNanoseconds - start < 500_000_000 {
                    if full { _ = try Frame.decode(line: line) } else { _ = try Frame.decodeDeferringBatches(line: line) }
                    count += 1
                }
            }
            best = min(best, elapsed / Double(count) * 1e6)
        }
        return best
    }
    let w = "wire"
    let bigMicros = try perLine(bigLine, full: false)
    emit(Figure(workload: w, metric: "big_blocks_line_bytes", value: Double(bigLine.count), unit: "bytes"))
    emit(Figure(workload: w, metric: "big_blocks_line_header_MB_per_s", value: Double(bigLine.count) / bigMicros, unit: "MB/s"))
    emit(Figure(workload: w, metric: "blocks_256_line_bytes", value: Double(batchLine.count), unit: "bytes"))
    emit(Figure(workload: w, metric: "blocks_256_line_header_us", value: try perLine(batchLine, full: false), unit: "us"))
    emit(Figure(workload: w, metric: "blocks_256_line_full_us", value: try perLine(batchLine, full: true), unit: "us"))
    emit(Figure(workload: w, metric: "vector_200_sites_us", value: try perLine(vectorLine, full: true), unit: "us"))
    emit(Figure(workload: w, metric: "ping_us", value: try perLine(pingLine, full: true), unit: "us"))
}
