import Foundation
import JourneyCore

// embed-rules OUTPUT FILE.yaml…: writes OUTPUT, a Swift file with two `BundledRules` constants per
// rule file: its text exactly (every byte escaped, so no content can end the literal), and the rule
// set it holds, loaded and validated here by `RuleSetLoader` and written out as a Swift expression,
// so that a process starting with the default rules pays for no YAML parse (issue 16). A file the
// loader refuses fails the build with the loader's message.
// Run by the EmbedRules build-tool plugin; see Plugins/EmbedRules.

let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first, arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: embed-rules OUTPUT FILE.yaml...\n".utf8))
    exit(64)
}

/// `mundo-tango.yaml` → `mundoTango`.
func identifier(forFile path: String) -> String {
    let stem = (URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
    let words = stem.split { !($0.isASCII && ($0.isLetter || $0.isNumber)) }.map(String.init)
    let name = words.enumerated().map { index, word in index == 0 ? word.lowercased() : word.prefix(1).uppercased() + word.dropFirst() }.joined()
    guard let first = name.first, !first.isNumber else { return "_" + name }
    return name
}

var source = "// Generated at build time by embed-rules (the EmbedRules plugin) from Rules/*.yaml. Do not edit: edit the YAML.\n\n"
source += "public import JourneyCore\n\n"
source += "extension BundledRules {\n"
for path in arguments.dropFirst() {
    let name = URL(fileURLWithPath: path).lastPathComponent
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        FileHandle.standardError.write(Data("embed-rules: \(path): cannot read it as UTF-8 text\n".utf8))
        exit(65)
    }
    let rules: RuleSet
    do {
        rules = try RuleSetLoader.load(yaml: text, source: "Rules/\(name)")
    } catch {
        FileHandle.standardError.write(Data("\(path): error: \(error)\n".utf8))
        exit(65)
    }
    let identifier = identifier(forFile: path)
    source += "    /// `Rules/\(name)`, exactly as it was when this binary was built.\n"
    source += "    public static let \(identifier) = \(SwiftLiteral.string(text))\n\n"
    source += "    /// `Rules/\(name)` as `RuleSetLoader` loaded it when this binary was built: the same value as\n"
    source += "    /// `RuleSetLoader.load(yaml: \(identifier), source: \"Rules/\(name)\")`, without parsing YAML.\n"
    source += "    public static let \(identifier)Rules = \(SwiftLiteral.ruleSet(rules))\n"
}
source += "}\n"

do {
    try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
} catch {
    FileHandle.standardError.write(Data("embed-rules: cannot write \(output): \(error)\n".utf8))
    exit(74)
}
