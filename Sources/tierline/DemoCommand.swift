import ArgumentParser
struct Demo: ParsableCommand { static let configuration = CommandConfiguration(abstract: "x"); func run() throws {} }
