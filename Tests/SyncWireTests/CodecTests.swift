import CompressNIO
import Foundation
import NIOCore
import NIOEmbedded
import SyncWire
import Testing
import TicketModel
import WirePipeline

/// The sync pipeline on an `EmbeddedChannel`: bytes in, `Inbound` values out.
func pipeline(limits: WireLimits = .standard, readTimeout: TimeAmount? = nil) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try SyncPipeline.install(on: channel.pipeline.syncOperations, limits: limits, readTimeout: readTimeout)
    return channel
}

/// Feeds bytes and collects what the pipeline passes on, with `blocks` payloads decoded the way a
/// session decodes them once its handshake is done.
func feed(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws -> [Inbound] {
    try channel.writeInbound(ByteBuffer(bytes: bytes))
    var out: [Inbound] = []
    while let item = try channel.readInbound(as: Inbound.self) {
        if case .batch(let raw) = item {
            do { out.append(.frame(.blocks(try raw.decode()))) } catch { out.append(.invalid(error)) }
        } else {
            out.append(item)
        }
    }
    return out
}

func sampleFrames() throws -> [Frame] {
    let (blocks, keys) = sampleBlocks(4)
    let key = SiteKey.generate()
    let hello = Hello(site: try SiteID("north"), role: .site, publicKey: key.publicKey,
                      nonce: Array(repeating: 7, count: 32), time: 1_700_000_000_000, software: "test")
    let encoded = try ChangeSet.encode(blocks, batch: 1, keys: keys)
    guard case .blocks(let batch) = try Frame.decode(line: encoded.line) else { throw WireError(.internal, "no batch") }
    return [
        .hello(hello),
        .auth(signature: Array(repeating: 1, count: 64)),
        .vector(VersionVector([try SiteID("north"): 3, try SiteID("south"): 9])),
        .vector(VersionVector([try SiteID("north"): 3, try SiteID("south"): 9]),
                heads: [try SiteID("north"): Head(seq: 3, hash: Array(repeating: 0xab, count: 32)),
                        try SiteID("south"): Head(seq: 9, hash: Array(0..<32))]),
        .blocks(batch),
        .ack(Ack(batch: 1, vector: VersionVector([try SiteID("north"): 4]), applied: 4, held: 0, refused: 0)),
        .synced(VersionVector()),
        .ping(id: 1, time: 5), .pong(id: 1, time: 6),
        .error(code: "unknown-frame", message: "x", fatal: false),
        .bye(reason: "done"),
    ]
}

func lines(_ frames: [Frame]) -> [UInt8] { frames.flatMap { $0.encodeLine() + [0x0A] } }

@Suite struct CodecTests {
    @Test func everyFrameRoundTrips() throws {
        let frames = try sampleFrames()
        for frame in frames { #expect(try Frame.decode(line: frame.encodeLine()) == frame, "\(frame.type)") }
    }

    @Test func headsMustNameTheBlocksTheVectorCovers() throws {
        let hash = String(repeating: "ab", count: 32)
        func refusal(_ line: String) -> WireError? {
            do { _ = try Frame.decode(line: Array(line.utf8)); return nil } catch { return error }
        }
        #expect(refusal(#"{"type":"vector","vector":{"north":3},"heads":{"north":{"seq":3,"hash":"\#(hash)"}}}"#) == nil)
        let wrongSeq = refusal(#"{"type":"vector","vector":{"north":3},"heads":{"north":{"seq":2,"hash":"\#(hash)"}}}"#)
        #expect(wrongSeq?.code == .badField && wrongSeq?.detail.contains("heads.north.seq") == true, "\(String(describing: wrongSeq))")
        let notCovered = refusal(#"{"type":"vector","vector":{},"heads":{"north":{"seq":3,"hash":"\#(hash)"}}}"#)
        #expect(notCovered?.code == .badField, "\(String(describing: notCovered))")
        let shortHash = refusal(#"{"type":"vector","vector":{"north":3},"heads":{"north":{"seq":3,"hash":"abcd"}}}"#)
        #expect(shortHash?.code == .badField && shortHash?.detail.contains("heads.north.hash") == true, "\(String(describing: shortHash))")
        let badSite = refusal(#"{"type":"vector","vector":{"north":3},"heads":{"North!":{"seq":3,"hash":"\#(hash)"}}}"#)
        #expect(badSite?.code == .badField, "\(String(describing: badSite))")
        // A peer of an earlier revision sends no heads: the frame is a plain vector.
        #expect(try Frame.decode(line: Array(#"{"type":"vector","vector":{"north":3}}"#.utf8)) == .vector(VersionVector([try SiteID("north"): 3])))
    }

    @Test func framesSplitAtEveryByteDecode() throws {
        let frames = try sampleFrames()
        let channel = try pipeline()
        var got: [Inbound] = []
        for byte in lines(frames) { got += try feed(channel, [byte]) }
        #expect(got == frames.map(Inbound.frame))
    }

    @Test func aLineSplitAtEveryPointDecodes() throws {
        let frame = try sampleFrames()[3]
        let bytes = frame.encodeLine() + [0x0A]
        for cut in stride(from: 1, to: bytes.count, by: max(1, bytes.count / 97)) {
            let channel = try pipeline()
            let got = try feed(channel, Array(bytes[..<cut])) + feed(channel, Array(bytes[cut...]))
            #expect(got == [.frame(frame)], "cut at \(cut)")
        }
    }

    @Test func severalFramesInOneRead() throws {
        let frames = try sampleFrames()
        #expect(try feed(try pipeline(), lines(frames)) == frames.map(Inbound.frame))
    }

    @Test func carriageReturnBeforeLineFeedIsTolerated() throws {
        let frame = Frame.ping(id: 3, time: 4)
        #expect(try feed(try pipeline(), frame.encodeLine() + [0x0D, 0x0A]) == [.frame(frame)])
    }

    @Test func anOverLongLineIsRefused() throws {
        var limits = WireLimits()
        limits.maxLineBytes = 1024
        let channel = try pipeline(limits: limits)
        let got = try feed(channel, Array(repeating: UInt8(ascii: "a"), count: 4096))
        #expect(got.map(code) == [.lineTooLong])
    }

    @Test func aCompleteLineOverTheLimitIsRefused() throws {
        var limits = WireLimits()
        limits.maxLineBytes = 64
        let line = Frame.error(code: "internal", message: String(repeating: "m", count: 60), fatal: true).encodeLine()
        #expect(try feed(try pipeline(limits: limits), line + [0x0A]).map(code) == [.lineTooLong])
    }

    @Test(arguments: [
        ("not json", WireError.Code.badJSON),
        ("[1,2]", .badJSON),
        ("{}", .badJSON),
        ("{\"type\":7}", .badJSON),
        ("", .badJSON),
        ("{\"type\":\"gossip\"}", .unknownFrame),
        ("{\"type\":\"ping\",\"id\":-1,\"time\":0}", .badField),
        ("{\"type\":\"ping\",\"id\":1.5,\"time\":0}", .badField),
        ("{\"type\":\"ping\",\"id\":9223372036854775808,\"time\":0}", .badField),
        ("{\"type\":\"auth\",\"signature\":\"00\"}", .badField),
        ("{\"type\":\"vector\",\"vector\":{\"North\":1}}", .badField),
        ("{\"type\":\"blocks\",\"batch\":1,\"count\":1,\"size\":10,\"data\":\"@@@@\"}", .badBase64),
        ("{\"type\":\"blocks\",\"batch\":1,\"count\":1,\"size\":10,\"data\":\"QUJD\"}", .badZlib),
        ("{\"type\":\"blocks\",\"batch\":1,\"count\":4097,\"size\":10,\"data\":\"QUJD\"}", .tooLarge),
        ("{\"type\":\"blocks\",\"batch\":1,\"count\":1,\"size\":4194305,\"data\":\"QUJD\"}", .tooLarge),
    ])
    func badLinesGiveTheirCodes(line: String, expected: WireError.Code) throws {
        #expect(try feed(try pipeline(), Array(line.utf8) + [0x0A]).map(code) == [expected])
    }

    @Test func invalidUTF8IsBadJSON() throws {
        #expect(try feed(try pipeline(), [0x7B, 0xFF, 0xFE, 0x7D, 0x0A]).map(code) == [.badJSON])
    }

    @Test func aDecodingErrorDoesNotStopTheNextLine() throws {
        let channel = try pipeline()
        let got = try feed(channel, Array("{\"type\":\"gossip\"}\n".utf8) + Frame.ping(id: 1, time: 2).encodeLine() + [0x0A])
        #expect(got.count == 2)
        #expect(got.last == .frame(.ping(id: 1, time: 2)))
    }

    @Test func corruptZlibIsRefused() throws {
        let (blocks, keys) = sampleBlocks(3)
        let good = try ChangeSet.encode(blocks, batch: 1, keys: keys)
        var object = try JSONSerialization.jsonObject(with: Data(good.line)) as! [String: Any]
        var data = Data(base64Encoded: object["data"] as! String)!
        data[data.count - 1] ^= 0xFF  // break the Adler-32
        object["data"] = data.base64EncodedString()
        let line = try JSONSerialization.data(withJSONObject: object)
        #expect(try feed(try pipeline(), Array(line) + [0x0A]).map(code) == [.badZlib])
        // A stream cut inside its trailer: all data present, the check value missing.
        object["data"] = data.dropLast(2).base64EncodedString()
        #expect(try feed(try pipeline(), Array(try JSONSerialization.data(withJSONObject: object)) + [0x0A]).map(code) == [.badZlib])
    }

    @Test func aPayloadInflatingPastItsLimitIsRefused() throws {
        // 4 MiB of zeros deflate to about 4 KiB; declared as 1000 bytes, inflating must stop there.
        var raw = ByteBuffer(bytes: [UInt8](repeating: 0, count: 4 << 20))
        let compressed = try raw.compress(with: .zlib(configuration: .init(compressionLevel: 9)))
        let data = Data(compressed.readableBytesView).base64EncodedString()
        let line = "{\"type\":\"blocks\",\"batch\":1,\"count\":1,\"size\":1000,\"data\":\"\(data)\"}"
        #expect(try feed(try pipeline(), Array(line.utf8) + [0x0A]).map(code) == [.tooLarge])
    }

    @Test func aShortOrPaddedChangeSetIsABadBatch() throws {
        let (blocks, keys) = sampleBlocks(2)
        let good = try ChangeSet.encode(blocks, batch: 1, keys: keys)
        var object = try JSONSerialization.jsonObject(with: Data(good.line)) as! [String: Any]
        object["count"] = 3
        #expect(try feed(try pipeline(), Array(try JSONSerialization.data(withJSONObject: object)) + [0x0A]).map(code) == [.badBatch])
        object["count"] = 1
        #expect(try feed(try pipeline(), Array(try JSONSerialization.data(withJSONObject: object)) + [0x0A]).map(code) == [.badBatch])
    }

    @Test func readIdlenessBecomesATimeout() throws {
        // IdleStateHandler measures with the real clock, which EmbeddedEventLoop's virtual time does
        // not move, so the idle event is fired directly here.
        let channel = try pipeline(readTimeout: .seconds(45))
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(try channel.readInbound(as: Inbound.self).map(code) == .timeout)
    }

    @Test func theTimeoutIsFollowedByAReadComplete() throws {
        // NIOAsyncChannel hands reads to the session only at read-complete; without one, a silent
        // peer's timeout waited for the next byte from that peer, which never came.
        final class ReadCompletes: ChannelInboundHandler {
            typealias InboundIn = Inbound
            var count = 0
            func channelReadComplete(context: ChannelHandlerContext) { count += 1 }
        }
        let channel = try pipeline(readTimeout: .seconds(45))
        let completes = ReadCompletes()
        try channel.pipeline.syncOperations.addHandler(completes)
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(completes.count == 1)
    }

    @Test func batchPayloadsAreLeftForTheSession() throws {
        // The pipeline checks a blocks frame's header but inflates nothing: a session decodes the
        // payload only after its handshake, so garbage from an unauthenticated peer costs nothing.
        let channel = try pipeline()
        try channel.writeInbound(ByteBuffer(bytes: Array("{\"type\":\"blocks\",\"batch\":1,\"count\":1,\"size\":1,\"data\":\"AAAA\"}\n".utf8)))
        guard case .batch(let raw) = try channel.readInbound(as: Inbound.self) else { Issue.record("no raw batch"); return }
        #expect(raw.batch == 1 && raw.count == 1 && raw.size == 1)
        #expect(throws: WireError.self) { try raw.decode() }
        // A bad header is refused at once.
        try channel.writeInbound(ByteBuffer(bytes: Array("{\"type\":\"blocks\",\"batch\":0,\"count\":1,\"size\":1,\"data\":\"AAAA\"}\n".utf8)))
        #expect(try channel.readInbound(as: Inbound.self).map(code) == .badField)
    }

    @Test func outboundFramesAreLines() throws {
        let channel = try pipeline()
        try channel.writeOutbound(Outbound.frame(.ping(id: 1, time: 2)))
        let buffer = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes.last == 0x0A)
        #expect(try Frame.decode(line: bytes.dropLast()) == .ping(id: 1, time: 2))
    }

    @Test func errorCodesKnowWhichAreFatal() {
        #expect(!WireError.Code.unknownFrame.isFatal)
        #expect(!WireError.Code.blockRefused.isFatal)
        #expect(WireError.Code.allCases.filter(\.isFatal).count == WireError.Code.allCases.count - 2)
    }
}

func code(_ inbound: Inbound) -> WireError.Code? {
    if case .invalid(let error) = inbound { return error.code }
    return nil
}
