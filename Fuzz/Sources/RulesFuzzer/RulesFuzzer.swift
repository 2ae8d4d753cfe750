import JourneyCore

/// One input: it must either load or be refused with a message; a crash or a hang is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func rulesFuzzerTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { UnsafeBufferPointer(start: $0, count: count) } ?? UnsafeBufferPointer(start: nil, count: 0)
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        let rules = try RuleSetLoader.load(yaml: text, source: "fuzz.yaml")
        precondition(rules.stages.count >= 2, "a loaded rule set has at least two stages")
    } catch {
        precondition(!error.description.isEmpty, "every refusal says what is wrong")
    }
    return 0
}

// swift-format-ignore: AlwaysUseLowerCamelCase
// libFuzzer's own name for its driver, declared as it is in C.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM names an executable's entry point `<module>_main`; hand control to libFuzzer's driver.
@_cdecl("RulesFuzzer_main")
public func rulesFuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, rulesFuzzerTestOneInput)
}
