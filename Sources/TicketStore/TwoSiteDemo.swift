import Foundation
import TicketModel

/// The short local demo: two stores edited apart, exchanged as files, ending equal.
///
/// It uses only the public paths an operator uses: ``StoreDirectory``, local writes, export files
/// with a version vector, import.
public enum TwoSiteDemo {
    public struct Outcome: Sendable, Encodable {
        public var folder: String
        public var northDigest: String
        public var southDigest: String
        public var converged: Bool
        public var tickets: [TicketRecord]
        public var conflictTicket: String
    }

    /// Runs the demo in `folder` (which must not hold stores yet), narrating each step to `say`.
    public static func run(in folder: String, say: (String) -> Void) throws -> Outcome {
        let northDir = StoreDirectory(path: folder + "/north")
        let southDir = StoreDirectory(path: folder + "/south")
        let north = try northDir.create(site: try SiteID("north"), role: .site)
        let south = try southDir.create(site: try SiteID("south"), role: .laptop)
        try south.learn(keys: [try SiteID("north"): try north.identity().publicKey])
        try north.learn(keys: [try SiteID("south"): try south.identity().publicKey])
        say("- Two stores: north (an office node) and south (a technician's laptop) in \(folder)")

        let printer = try north.createTicket(TicketDraft(subject: "Printer on floor 2 prints blank pages", priority: .high,
                                                         customer: "acme-corp", channel: "email", group: "hardware",
                                                         tags: ["printer", "floor-2"], firstMessage: "Every page comes out blank since this morning."))
        let vpn = try north.createTicket(TicketDraft(subject: "VPN drops every 10 minutes", priority: .urgent, customer: "globex",
                                                     channel: "phone", tags: ["network"]))
        _ = try north.createTicket(TicketDraft(subject: "New starter needs a laptop", priority: .low, customer: "initech", channel: "portal"))
        say("- north opens \(printer.displayNumber), \(vpn.displayNumber) and NORTH-3")
        try exchange(from: north, to: south, folder: folder, name: "north-to-south-1", say: say)

        say("- The laptop goes offline; both sides keep working apart:")
        try north.update(printer.id, [(.assignee, .text("anna"))])
        try south.update(printer.id, [(.assignee, .text("bela"))])
        say("   north assigns \(printer.displayNumber) to anna, south assigns it to bela (a concurrent write)")
        try north.tag(printer.id, add: [], remove: ["printer"])
        try south.tag(printer.id, add: ["printer", "toner"], remove: [])
        say("   north removes the tag printer, south adds printer again and toner (add wins)")
        try north.comment(vpn.id, body: "Pushed a new VPN profile; should be stable now.", kind: .agentReply, visibility: .public, actor: "anna")
        try north.update(vpn.id, [(.status, .text("solved"))])
        try south.comment(vpn.id, body: "It dropped again at 14:05.", kind: .customerMessage, visibility: .public, actor: "globex")
        say("   north solves \(vpn.displayNumber) while south records a customer message north has not seen")
        let onsite = try south.createTicket(TicketDraft(subject: "Meeting room screen flickers", customer: "acme-corp", channel: "phone"))
        try south.comment(onsite.id, body: "Replaced the HDMI cable, flicker gone.", kind: .internalNote, visibility: .internal, actor: "bela")
        say("   south opens \(onsite.displayNumber) on site and notes the fix")

        try exchange(from: south, to: north, folder: folder, name: "south-to-north", say: say)
        try exchange(from: north, to: south, folder: folder, name: "north-to-south-2", say: say)

        let northDigest = try north.digest(), southDigest = try south.digest()
        let merged = try north.ticket(printer.id)
        say("- \(printer.displayNumber): assignee \(merged.assignee ?? "—"), tags \(merged.tags.joined(separator: ", ")), \(merged.conflictCount) conflict shown in its history")
        say("   \(vpn.displayNumber): status \(try north.ticket(vpn.id).status) (the unseen customer message reopened it)")
        say("- digests: north \(northDigest.prefix(16))…  south \(southDigest.prefix(16))…  \(northDigest == southDigest ? "equal" : "DIFFERENT")")
        return Outcome(folder: folder, northDigest: northDigest, southDigest: southDigest, converged: northDigest == southDigest,
                       tickets: try north.tickets(), conflictTicket: printer.displayNumber)
    }

    /// Moves what `to` lacks from `from`, as a file, the way `tierline export --since-vector` does.
    static func exchange(from: TicketDatabase, to: TicketDatabase, folder: String, name: String, say: (String) -> Void) throws {
        let archive = try from.exportArchive(after: try to.vector())
        let path = folder + "/\(name).tlx"
        try Data(archive.bytes).write(to: URL(fileURLWithPath: path))
        let report = try to.importArchive(archive.bytes)
        say("   exchange \(name): \(archive.blockCount) blocks, \(archive.bytes.count) bytes zlib; \(report.applied) applied")
    }
}
