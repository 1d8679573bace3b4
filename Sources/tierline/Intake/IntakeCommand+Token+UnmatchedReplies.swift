import ArgumentParser
import Foundation
import TicketStore

extension IntakeCommand.Token {
    struct UnmatchedRepliesCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unmatched-replies",
            abstract: "Choose what a message an integration delivers does when it matches no ticket: open a new one, or refuse it.",
            discussion: "A message (POST /api/intake/messages) matches a ticket by its ticket, its externalThreadId or a [NORTH-12] in its subject. With open (the default) one that gives none of them, or whose thread id or number finds nothing, opens a new ticket for its customer, as a mail gateway expects; with refuse it is answered 400 (or 404 naming the reference that found nothing). A ticket given by ticket that does not exist is refused either way.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The integration's token name (`tierline intake token list`).") var name: String
        @Argument(help: "open or refuse.") var choice: UnmatchedReplies

        func run() throws {
            try options.open().setUnmatchedReplies(integration: name, choice)
            if options.json {
                struct Set: Encodable { var name: String; var unmatchedReplies: UnmatchedReplies }
                return try printJSON(Set(name: name, unmatchedReplies: choice))
            }
            print("messages of \(name) that match no ticket: \(choice == .open ? "open a new ticket" : "refused")")
        }
    }
}
