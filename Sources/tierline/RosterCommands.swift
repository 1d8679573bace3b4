import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

/// A 32-byte public key given as 64 hex digits.
struct PublicKeyArgument: ExpressibleByArgument {
    var bytes: [UInt8]
    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        guard text.utf8.count == 64, let bytes = [UInt8](hex: text) else { return nil }
        self.bytes = bytes
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

struct RosterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roster",
        abstract: "The fleet's members: which sites may sync, with which key and role.",
        discussion: """
            The coordinator signs the roster; every node pins the coordinator's public key at setup (`init \
            --coordinator-key` or `roster pin`) and accepts rosters only under it. A session with a site that is not \
            in the roster is refused before any block moves. A new site joins by handing its public key (printed by \
            `tierline init`) to the coordinator's operator, who runs `roster add`. Peers learn each edit at their next \
            session, or within a second on an open one.
            """,
        subcommands: [RosterList.self, RosterAdd.self, RosterRemove.self, RosterPin.self, RosterExport.self, RosterImport.self],
        defaultSubcommand: RosterList.self)
}

struct RosterList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the roster this store holds.")
    @OptionGroup var options: StoreOptions

    struct Output: Encodable {
        var version: UInt64
        @NullEncoded var coordinator: String?
        @NullEncoded var pinnedKey: String?
        @NullEncoded var issued: Date?
        var sites: [Roster.Member]
        var released: [Roster.Release]

    }

    func run() throws {
        let store = try options.open()
        let signed = try store.roster()
        let pinned = try store.pinnedCoordinatorKey()
        let roster = signed?.roster
        let output = Output(version: roster?.version ?? 0, coordinator: roster?.coordinator, pinnedKey: pinned?.hexString,
                            issued: roster.map { Date(timeIntervalSince1970: Double($0.issued) / 1000) },
                            sites: roster?.sites ?? [], released: roster?.released ?? [])
        if options.json { return try printJSON(output) }
        guard let roster else {
            print(pinned == nil
                  ? "no coordinator key pinned and no roster: this store syncs with nobody. Run `tierline roster pin KEY` with the coordinator's public key"
                  : "coordinator key \(pinned!.hexString) pinned; no roster yet: the first sync with the coordinator (or a site that has it) brings it")
            return
        }
        print("roster version \(roster.version), signed by coordinator \(roster.coordinator) \(ageText(Date().timeIntervalSince(output.issued!)))")
        printTable(["SITE", "ROLE", "KEY", "STATUS"], roster.sites.map { m in
            [m.site, m.role.rawValue, m.key, m.revokedAfter.map { "removed (blocks after \($0) refused)" } ?? "active"]
        }, maxWidth: 64)
        if !roster.released.isEmpty {
            print("\nreleased from the clock-drift quarantine:")
            printTable(["SITE", "SEQ", "HASH"], roster.released.map { [$0.site, "\($0.seq)", $0.hash] })
        }
    }
}

struct RosterAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a site to the roster (coordinator only), or change an active site's role.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The site id, as the site chose it at `tierline init`.") var site: SiteID
    @Option(help: "The site's public key: the 64 hex digits `tierline init` printed there.") var key: PublicKeyArgument
    @Option(help: "site (an office node) or laptop.") var role: SiteRole = .site

    func validate() throws {
        if role == .coordinator { throw ValidationError("a fleet has one coordinator, the store that signs the roster; add sites as site or laptop") }
    }

    func run() throws {
        let signed = try options.open().admit(site: site, key: key.bytes, role: role)
        if options.json { return try printJSON(signed.roster) }
        print("roster version \(signed.roster.version): \(site) is a \(role.rawValue) with key \(key.bytes.hexString.prefix(16))…; peers learn it at their next session")
    }
}

struct RosterRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a site from the roster (coordinator only): its sessions are refused, its later blocks too.",
        discussion: """
            The site's blocks up to the newest one this coordinator holds stay valid everywhere (replicas may hold them \
            already); later ones are refused on every replica. Sync the site once more before removing it if you want its \
            last work.
            """)
    @OptionGroup var options: StoreOptions
    @Argument(help: "The site id to remove.") var site: SiteID

    func run() throws {
        let (signed, held) = try options.open().removeFromRoster(site)
        if options.json { return try printJSON(signed.roster) }
        print("roster version \(signed.roster.version): \(site) removed; its blocks after seq \(held) are refused everywhere")
    }
}

struct RosterPin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Pin the coordinator's public key on a site or laptop store (once; `init --coordinator-key` does it at setup).")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The coordinator's public key: 64 hex digits, from `tierline init` or `tierline roster list` there.") var key: PublicKeyArgument

    func run() throws {
        let store = try options.open()
        try store.pinCoordinator(key: key.bytes)
        if options.json { return try printJSON(["pinnedKey": key.bytes.hexString]) }
        print("pinned coordinator key \(key.bytes.hexString); this store now syncs only with sites in that coordinator's roster")
    }
}

/// The file form of a signed roster: the exact signed text and the signature.
struct RosterFile: Codable {
    var document: String
    var signature: String
}

struct RosterExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the signed roster to a file (or stdout), to hand to a site that cannot reach the coordinator yet.")
    @OptionGroup var options: StoreOptions
    @Option(help: "The file to write; default: standard output.") var out: String?

    func run() throws {
        guard let signed = try options.open().roster() else {
            throw CLIFailure(message: "this store holds no roster yet; export it from the coordinator (or a store that synced with it)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(RosterFile(document: signed.document, signature: signed.signature.hexString)) + Data("\n".utf8)
        guard let out else { return FileHandle.standardOutput.write(data) }
        guard FileManager.default.createFile(atPath: out, contents: data) else {
            throw CLIFailure(message: "cannot write \(out); check the folder and its permissions")
        }
        if !options.json { print("wrote roster version \(signed.roster.version) to \(out)") }
    }
}

struct RosterImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Adopt a roster file from `roster export`, if it is signed by the pinned coordinator and newer.")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The file written by `tierline roster export`.") var file: String

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIFailure(message: "cannot read \(file); check the path and its permissions")
        }
        let parsed: RosterFile
        do { parsed = try JSONDecoder().decode(RosterFile.self, from: data) } catch {
            throw CLIFailure(message: "\(file) is not a roster file (a JSON object with \"document\" and \"signature\", as `tierline roster export` writes)")
        }
        guard parsed.signature.utf8.count == 128, let signature = [UInt8](hex: parsed.signature) else {
            throw CLIFailure(message: "\(file): \"signature\" must be 128 hex digits")
        }
        let store = try options.open()
        let adopted = try store.adopt(document: parsed.document, signature: signature)
        let version = try store.rosterVersion()
        if options.json { return try printJSON(["adopted": adopted ? 1 : 0, "version": Int(version)]) }
        print(adopted ? "adopted roster version \(version)" : "this store already holds roster version \(version), as new or newer; nothing changed")
    }
}

struct QuarantineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine",
        abstract: "Blocks held back because they are stamped too far in the future.",
        discussion: """
            A block whose clock stamp is more than 5 minutes ahead of this node's clock is not merged: it waits, and is \
            retried as time passes. The coordinator can release one (`quarantine release SITE SEQ`): the release travels \
            in the roster, so every replica then applies that exact block without moving its own clock. Fix the clock of \
            the site that wrote it.
            """,
        subcommands: [QuarantineList.self, QuarantineRelease.self],
        defaultSubcommand: QuarantineList.self)
}

struct QuarantineList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List quarantined blocks with how far ahead each is.")
    @OptionGroup var options: StoreOptions

    func run() throws {
        let blocks = try options.open().quarantined()
        if options.json { return try printJSON(blocks) }
        guard !blocks.isEmpty else { return print("no block is quarantined") }
        printTable(["SITE", "SEQ", "AHEAD", "HASH"], blocks.map { [$0.origin, "\($0.seq)", durationText(millis: $0.aheadMillis), $0.hash] })
    }
}

struct QuarantineRelease: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "release", abstract: "Release a quarantined block (coordinator only).")
    @OptionGroup var options: StoreOptions
    @Argument(help: "The site that wrote the block.") var site: SiteID
    @Argument(help: "Its seq, as `tierline quarantine list` shows it.") var seq: UInt64

    func run() throws {
        let (signed, block) = try options.open().releaseQuarantined(site: site, seq: seq)
        if options.json { return try printJSON(signed.roster.released) }
        print("released \(site) seq \(seq) (\(durationText(millis: block.aheadMillis)) ahead) in roster version \(signed.roster.version); every replica applies it as the roster reaches it")
    }
}

/// "4 min 10 s", "3 h 2 min", "2 d 1 h": a duration for tables.
func durationText(millis: Int64) -> String {
    let seconds = abs(millis) / 1000
    let sign = millis < 0 ? "-" : ""
    if seconds < 60 { return "\(sign)\(seconds) s" }
    if seconds < 3600 { return "\(sign)\(seconds / 60) min \(seconds % 60) s" }
    if seconds < 86_400 { return "\(sign)\(seconds / 3600) h \(seconds % 3600 / 60) min" }
    return "\(sign)\(seconds / 86_400) d \(seconds % 86_400 / 3600) h"
}
