import ArgumentParser

/// `tierline notify`: checks of the node's notification channels.
struct NotifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify", abstract: "Check the mail relay and the webhooks of the node's settings with test notices.",
        subcommands: [Test.self])
}
