import Foundation

/// The rule files shipped with Journey, as resources of this small target, so that the
/// default set is found from any working directory.
public enum BundledRules {
    /// The path of the bundled default rule set, `Rules/mundo-tango.yaml`.
    public static var defaultPath: String? {
        Bundle.module.url(forResource: "mundo-tango", withExtension: "yaml")?.path
    }
}
