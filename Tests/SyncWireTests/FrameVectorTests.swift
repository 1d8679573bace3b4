import Foundation
import SyncWire
import Testing
import TestSupport
import TicketModel

/// Checks the frame decoder against `Protocol/vectors/frames.json`, written by
/// `Protocol/tools/make_frame_vectors.py`, an independent implementation of `Protocol/PROTOCOL.md` §2.
@Suite struct FrameVectorTests {
    struct Case: Decodable {
        var name: String
        var line: String?
        var lineBase64: String?
        var error: String?
        var bytes: [UInt8] {
            if let lineBase64 { return [UInt8](Data(base64Encoded: lineBase64) ?? Data()) }
            return Array((line ?? "").utf8)
        }
    }

    struct File: Decodable {
        var valid: [Case]
        var invalid: [Case]
        var limits: [String: Int]
    }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Protocol/vectors/frames.json")

    static func load() throws -> (file: File, expectations: [String: Any]) {
        let data = try Data(contentsOf: url)
        let file = try JSONDecoder().decode(File.self, from: data)
        let raw = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var expectations: [String: Any] = [:]
        for item in raw["valid"] as! [[String: Any]] { expectations[item["name"] as! String] = item["expect"] }
        return (file, expectations)
    }

    /// The decoded frame in the vectors' `expect` shape.
    static func shape(_ frame: Frame) -> [String: Any] {
        func vector(_ v: VersionVector) -> [String: Any] {
            Dictionary(uniqueKeysWithValues: v.entries.map { ($0.key.rawValue, Int($0.value) as Any) })
        }
        switch frame {
        case .hello(let h):
            var shape: [String: Any] = ["type": "hello", "protocol": h.protocolVersion, "minProtocol": h.minProtocol, "schema": h.schema,
                    "site": h.site.rawValue, "role": h.role.rawValue, "publicKey": h.publicKey.hexString,
                    "nonce": h.nonce.hexString, "time": Int(h.time), "software": h.software as Any? ?? NSNull()]
            if h.roster != 0 { shape["roster"] = Int(h.roster) }
            if let restored = h.restored { shape["restored"] = Int(restored) }
            return shape
        case .roster(let document, let signature): return ["type": "roster", "document": document, "signature": signature.hexString]
        case .auth(let signature): return ["type": "auth", "signature": signature.hexString]
        case .vector(let v, let heads):
            var shape: [String: Any] = ["type": "vector", "vector": vector(v)]
            if !heads.isEmpty {
                shape["heads"] = Dictionary(uniqueKeysWithValues: heads.map {
                    ($0.key.rawValue, ["seq": Int($0.value.seq), "hash": $0.value.hash.hexString] as Any)
                })
            }
            return shape
        case .synced(let v, let awaiting):
            var shape: [String: Any] = ["type": "synced", "vector": vector(v)]
            if let awaiting { shape["awaiting"] = awaiting.map(\.rawValue) }
            return shape
        case .blocks(let b):
            return ["type": "blocks", "batch": Int(b.batch), "count": b.blocks.count, "size": b.size,
                    "keys": Dictionary(uniqueKeysWithValues: b.keys.map { ($0.key.rawValue, $0.value.hexString as Any) }),
                    "blocks": b.blocks.map { $0.bytes.hexString }]
        case .ack(let a):
            return ["type": "ack", "batch": Int(a.batch), "vector": vector(a.vector), "applied": Int(a.applied),
                    "held": Int(a.held), "refused": Int(a.refused)]
        case .ping(let id, let time): return ["type": "ping", "id": Int(id), "time": Int(time)]
        case .pong(let id, let time): return ["type": "pong", "id": Int(id), "time": Int(time)]
        case .bye(let reason): return ["type": "bye", "reason": reason as Any? ?? NSNull()]
        case .error(let code, let message, let fatal): return ["type": "error", "code": code, "message": message, "fatal": NSNumber(value: fatal)]
        case .fork(let block): return ["type": "fork", "block": block.bytes.hexString]
        }
    }

    /// JSON text with sorted keys: compares values whatever their bridged types.
    static func canonical(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test func limitsMatchTheSpec() throws {
        let limits = try Self.load().file.limits
        #expect(limits["maxLineBytes"] == WireLimits.standard.maxLineBytes)
        #expect(limits["maxBatchBytes"] == WireLimits.standard.maxBatchBytes)
        #expect(limits["maxBatchBlocks"] == WireLimits.standard.maxBatchBlocks)
    }

    @Test func validFramesDecodeAsExpected() throws {
        let (file, expectations) = try Self.load()
        #expect(file.valid.count >= 20)
        for item in file.valid {
            do {
                let frame = try Frame.decode(line: item.bytes)
                let expected = try #require(expectations[item.name] as? [String: Any])
                #expect(try Self.canonical(Self.shape(frame)) == Self.canonical(expected), "\(item.name): got \(Self.shape(frame))")
                // Re-encoding gives a line that decodes to the same frame.
                let again = try Frame.decode(line: frame.encodeLine())
                #expect(try Self.canonical(Self.shape(again)) == Self.canonical(Self.shape(frame)), "\(item.name) round trip")
            } catch {
                Issue.record("\(item.name): \(error)")
            }
        }
    }

    @Test func invalidFramesGiveTheirCodes() throws {
        let file = try Self.load().file
        #expect(file.invalid.count >= 30)
        for item in file.invalid {
            do {
                let frame = try Frame.decode(line: item.bytes)
                Issue.record("\(item.name): decoded as \(frame.type), expected \(item.error ?? "?")")
            } catch {
                #expect(error.code.rawValue == item.error, "\(item.name): \(error)")
            }
        }
    }
}

/// Random damage to valid lines: the decoder answers with a frame or a `WireError`, never a crash.
@Suite struct FrameMutationTests {
    @Test func damagedLinesNeverCrashTheDecoder() throws {
        let lines = try FrameVectorTests.load().file.valid.map(\.bytes)
        var rng = SplitMix(state: 0x7131_2026)
        var outcomes: [String: Int] = [:]
        for round in 0..<3000 {
            var line = lines[round % lines.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !line.isEmpty {
                let at = Int.random(in: 0..<line.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: line[at] ^= UInt8.random(in: 1...255, using: &rng)
                case 1: line.remove(at: at)
                case 2: line.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                default: line = Array(line.prefix(at))
                }
            }
            do {
                let frame = try Frame.decode(line: line)
                outcomes[frame.type, default: 0] += 1
            } catch {
                outcomes[error.code.rawValue, default: 0] += 1
            }
        }
        // The damage is mostly caught, and by more than one check.
        #expect(outcomes.keys.filter { WireError.Code(rawValue: $0) != nil }.count >= 4, "\(outcomes)")
    }
}
