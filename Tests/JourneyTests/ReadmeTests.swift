import Foundation
import JourneyCore
import Testing

/// The README is tested: its rule files load with the real loader, and its library snippet is
/// the one `Examples/QuickStart` runs (CI builds and runs that package).
@Suite("README")
struct ReadmeTests {
    /// The repository's root, found from this file.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A fenced block of the README: its language, the line of its first line, its text.
    struct Block {
        let language: String
        let line: Int
        let text: String
    }

    /// Every fenced block of README.md.
    static func blocks() throws -> [Block] {
        let lines = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        var blocks: [Block] = []
        var open: (language: String, line: Int, lines: [Substring])?
        for (index, line) in lines.enumerated() {
            if let current = open {
                if line == "```" {
                    blocks.append(Block(language: current.language, line: current.line, text: current.lines.joined(separator: "\n") + "\n"))
                    open = nil
                } else {
                    open?.lines.append(line)
                }
            } else if line.hasPrefix("```") {
                open = (String(line.dropFirst(3)), index + 2, [])
            }
        }
        return blocks
    }

    @Test("every yaml block of the README is a rule file the loader accepts")
    func yamlBlocksLoad() throws {
        // Given: the README's yaml blocks
        let yaml = try Self.blocks().filter { $0.language == "yaml" }
        try #require(!yaml.isEmpty)

        for block in yaml {
            // When: loading each with the rules loader
            // Then: it loads (a failure shows the loader's message, naming the README's line)
            do {
                _ = try RuleSetLoader.load(yaml: block.text, source: "README.md (the yaml block at line \(block.line))")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("the README's library snippet is Examples/QuickStart's main.swift, with its Package.swift lines")
    func snippetIsTheExample() throws {
        // Given: the example package and the README's swift blocks
        let example = Self.root.appendingPathComponent("Examples/QuickStart")
        let main = try String(contentsOf: example.appendingPathComponent("Sources/QuickStart/main.swift"), encoding: .utf8)
        let manifest = try String(contentsOf: example.appendingPathComponent("Package.swift"), encoding: .utf8)
        let swift = try Self.blocks().filter { $0.language == "swift" }

        // Then: one block is main.swift exactly
        #expect(swift.contains { $0.text == main }, "no swift block of README.md is Examples/QuickStart/Sources/QuickStart/main.swift")

        // And: the block that shows the package lines shows lines of the example's Package.swift
        let packageBlock = try #require(swift.first { $0.text.contains(".package(name: \"Journey\"") }, "README.md shows no .package line")
        let shown = packageBlock.text.split(separator: "\n")
            .map { ($0.components(separatedBy: "//").first ?? "").trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix(".package(") || $0.hasPrefix(".product(") }
        #expect(shown.count >= 3)
        for line in shown {
            #expect(manifest.contains(line), "README.md:\(packageBlock.line): '\(line)' is not in Examples/QuickStart/Package.swift")
        }
    }
}
