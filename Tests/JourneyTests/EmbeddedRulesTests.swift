import Foundation
import Journey
import JourneyCore
import JourneyRules
import Testing

/// The default rules are compiled in from `Rules/mundo-tango.yaml`, the one source of truth.
@Suite("Embedded default rules")
struct EmbeddedRulesTests {
    /// `Rules/mundo-tango.yaml` in this repository, found from this file.
    static let file = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Rules/mundo-tango.yaml")

    @Test("the compiled-in text is the file, byte for byte")
    func sameAsFile() throws {
        // Given: the file in the repository
        let text = try String(contentsOf: Self.file, encoding: .utf8)

        // Then: the constant generated at build time holds exactly its text
        #expect(BundledRules.defaultYAML == text)
    }

    @Test("the default set loads from the binary alone and is named as the file")
    func loads() throws {
        // When: loading the default set (no file is read)
        let rules = try Rules.bundledDefault()

        // Then: the same set as loading the file, named Rules/mundo-tango.yaml
        let fromFile = try Rules.load(path: Self.file.path, displayedAs: BundledRules.defaultName)
        #expect(rules.source == "Rules/mundo-tango.yaml")
        #expect(rules == fromFile)
    }

    @Test("the rule set compiled in at build time is the one the loader reads from the compiled-in text")
    func preParsedIsTheParse() throws {
        // Given: the embedded text, loaded now by the YAML loader
        let parsed = try RuleSetLoader.load(yaml: BundledRules.defaultYAML, source: BundledRules.defaultName)

        // Then: the set embed-rules wrote out as Swift at build time is equal to it, field by field
        #expect(BundledRules.defaultRules == parsed)
        #expect(BundledRules.defaultRules.stages == parsed.stages)
        #expect(BundledRules.defaultRules.edges == parsed.edges)
        #expect(BundledRules.defaultRules.aliases == parsed.aliases)
        #expect(BundledRules.defaultRules.cacheTTL == parsed.cacheTTL)
        #expect(BundledRules.defaultRules.version == parsed.version)
    }
}
