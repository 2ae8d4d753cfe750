import Foundation

// embed-rules OUTPUT FILE.yaml…: writes OUTPUT, a Swift file with one `BundledRules` constant per
// rule file, holding its text exactly (every byte escaped, so no content can end the literal).
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

/// A Swift string literal holding `text` exactly.
func literal(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": result += "\\\\"
        case "\"": result += "\\\""
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += "\\u{\(String(scalar.value, radix: 16))}"
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

var source = "// Generated at build time by embed-rules (the EmbedRules plugin) from Rules/*.yaml. Do not edit: edit the YAML.\n\n"
source += "extension BundledRules {\n"
for path in arguments.dropFirst() {
    let name = URL(fileURLWithPath: path).lastPathComponent
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        FileHandle.standardError.write(Data("embed-rules: \(path): cannot read it as UTF-8 text\n".utf8))
        exit(65)
    }
    source += "    /// `Rules/\(name)`, exactly as it was when this binary was built.\n"
    source += "    public static let \(identifier(forFile: path)) = \(literal(text))\n"
}
source += "}\n"

do {
    try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
} catch {
    FileHandle.standardError.write(Data("embed-rules: cannot write \(output): \(error)\n".utf8))
    exit(74)
}
