public import JourneyCore

/// The rule files of `Rules/`, compiled into the binary: at build time the EmbedRules plugin
/// (`Plugins/EmbedRules`, running `embed-rules`) turns each YAML file of this folder into a string
/// constant of this type, named after the file (`mundo-tango.yaml` → ``mundoTango``), and into the
/// rule set `RuleSetLoader` loads from it (``mundoTangoRules``), written out as Swift. The YAML
/// files stay the one source of truth; the generated source lives in the build folder only.
public enum BundledRules {
    /// How the default rule set is named in messages and in `RuleSet.source`.
    public static let defaultName = "Rules/mundo-tango.yaml"

    /// The text of the default rule set, `Rules/mundo-tango.yaml`.
    public static var defaultYAML: String { mundoTango }

    /// The default rule set, loaded and validated from `Rules/mundo-tango.yaml` when the binary was
    /// built: equal to `RuleSetLoader.load(yaml: defaultYAML, source: defaultName)`, with no YAML
    /// parse at run time (a process's start, issue 16).
    public static var defaultRules: RuleSet { mundoTangoRules }
}
