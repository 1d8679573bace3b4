import ArgumentParser
import Foundation
import SyncWire
import TicketModel
import TicketStore

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
