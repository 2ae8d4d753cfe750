/// The rule files of `Rules/`, compiled into the binary: at build time the EmbedRules plugin
/// (`Plugins/EmbedRules`, running `embed-rules`) turns each YAML file of this folder into a string
/// constant of this type, named after the file (`mundo-tango.yaml` → ``mundoTango``). The YAML
/// files stay the one source of truth; the generated source lives in the build folder only.
public enum BundledRules {
    /// How the default rule set is named in messages and in `RuleSet.source`.
    public static let defaultName = "Rules/mundo-tango.yaml"

    /// The text of the default rule set, `Rules/mundo-tango.yaml`.
    public static var defaultYAML: String { mundoTango }
}
