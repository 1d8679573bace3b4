import Testing
@testable import FaultProxy

@Test func placeholder() { #expect(Bool(true)) }
