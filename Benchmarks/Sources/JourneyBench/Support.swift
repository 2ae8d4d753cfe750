import Foundation
import JourneyCore

#if canImport(Glibc)
import Glibc
#endif

// MARK: Statistics

/// Durations of one measured thing, in nanoseconds.
struct Samples {
    var values: [Double] = []

    mutating func add(_ duration: Duration) { values.append(duration.nanoseconds) }
    mutating func add(nanoseconds: Double) { values.append(nanoseconds) }

    var count: Int { values.count }
    var sorted: [Double] { values.sorted() }
    /// The nearest-rank percentile `p` in 0...100.
    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = sorted
        let rank = Int((p / 100 * Double(s.count)).rounded(.up)) - 1
        return s[Swift.min(Swift.max(rank, 0), s.count - 1)]
    }
    var median: Double {
        guard !values.isEmpty else { return .nan }
        let s = sorted
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var p99: Double { percentile(99) }
    var mean: Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
    var min: Double { values.min() ?? .nan }
    var max: Double { values.max() ?? .nan }
}

extension Duration {
    var nanoseconds: Double {
        Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9
    }
    var seconds: Double { nanoseconds / 1e9 }
}

/// Times `body` with the monotonic clock.
@inline(__always)
func timed<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let value = try body()
    return (value, clock.now - start)
}

// MARK: Formatting

/// "12.3 µs", "4.56 ms", "812 ns", "1.23 s".
func fmt(ns: Double) -> String {
    guard ns.isFinite else { return "–" }
    switch ns {
    case ..<1_000: return String(format: "%.0f ns", ns)
    case ..<10_000: return String(format: "%.2f µs", ns / 1e3)
    case ..<1_000_000: return String(format: "%.1f µs", ns / 1e3)
    case ..<10_000_000: return String(format: "%.2f ms", ns / 1e6)
    case ..<1_000_000_000: return String(format: "%.1f ms", ns / 1e6)
    default: return String(format: "%.2f s", ns / 1e9)
    }
}

func fmtRatio(_ r: Double) -> String {
    guard r.isFinite else { return "–" }
    switch r {
    case ..<10: return String(format: "%.2f×", r)
    case ..<100: return String(format: "%.1f×", r)
    default: return String(format: "%.0f×", r)
    }
}

func fmtCount(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() {
        if i > 0 && i % 3 == 0 && c != "-" { out.append(",") }
        out.append(c)
    }
    return String(out.reversed())
}

func fmtBytes(_ b: Int64) -> String {
    let d = Double(b)
    if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
    return String(format: "%.0f kB", d / 1e3)
}

/// Markdown output, echoed to stdout and kept for the results file.
final class Report: @unchecked Sendable {
    private(set) var lines: [String] = []
    private let lock = NSLock()

    func say(_ line: String = "") {
        lock.lock(); lines.append(line); lock.unlock()
        print(line)
        fflush(nil)
    }

    func table(_ header: [String], _ rows: [[String]]) {
        say("| " + header.joined(separator: " | ") + " |")
        say("|" + header.map { _ in " --- " }.joined(separator: "|") + "|")
        for row in rows { say("| " + row.joined(separator: " | ") + " |") }
        say()
    }

    /// A progress note on stderr, not part of the report.
    func note(_ line: String) {
        FileHandle.standardError.write(Data("· \(line)\n".utf8))
    }
}

// MARK: Process

/// Peak resident set (VmHWM) and current resident set (VmRSS) of this process, in kB.
func memoryStatus() -> (hwmKB: Int, rssKB: Int, anonKB: Int, fileKB: Int) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0, 0, 0) }
    var hwm = 0, rss = 0, anon = 0, file = 0
    for line in text.split(separator: "\n") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count >= 2 else { continue }
        switch parts[0] {
        case "VmHWM:": hwm = Int(parts[1]) ?? 0
        case "VmRSS:": rss = Int(parts[1]) ?? 0
        case "RssAnon:": anon = Int(parts[1]) ?? 0
        case "RssFile:": file = Int(parts[1]) ?? 0
        default: break
        }
    }
    return (hwm, rss, anon, file)
}

/// The peaks of anonymous memory (`RssAnon`: heap, stacks, SQLite's page caches) and of
/// file-backed pages (`RssFile`: the mapped binary and database, the OS page cache's) of this
/// process, sampled every 5 ms on a thread of its own until ``stop()``. The kernel keeps the peak
/// of their sum only (`VmHWM`).
final class MemorySampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peaks = (anonKB: 0, fileKB: 0)
    private var running = true

    /// Starts sampling. The sampling thread holds the sampler until ``stop()`` ends it.
    init() {
        let thread = Thread { [self] in
            while true {
                let status = memoryStatus()
                let more = self.lock.withLock {
                    self.peaks = (max(self.peaks.anonKB, status.anonKB), max(self.peaks.fileKB, status.fileKB))
                    return self.running
                }
                if !more { return }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
        thread.start()
    }

    /// Stops sampling (after one last sample); returns the peaks, in KB.
    func stop() -> (anonKB: Int, fileKB: Int) {
        let status = memoryStatus()
        return lock.withLock {
            running = false
            peaks = (max(peaks.anonKB, status.anonKB), max(peaks.fileKB, status.fileKB))
            return peaks
        }
    }
}

/// The path of this executable.
func selfExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

struct SpawnError: Error, CustomStringConvertible {
    let description: String
}

/// Runs `path` with `arguments` and waits; stdin/stdout/stderr go to the given files.
/// The duration runs from just before `posix_spawn` to just after `waitpid`.
@discardableResult
func spawn(
    _ path: String, _ arguments: [String], stdin: String = "/dev/null", stdout: String = "/dev/null",
    stderr: String? = nil
) throws -> (status: Int32, elapsed: Duration) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
    // "/dev/stderr" is our own stderr: share the descriptor. Opening the path with O_TRUNC would
    // truncate whatever file our stderr is (a CI log).
    if stdout == "/dev/stderr" {
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    }
    if let stderr { posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let clock = ContinuousClock()
    let start = clock.now
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard rc == 0 else { throw SpawnError(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let elapsed = clock.now - start
    let exited = (status & 0x7f) == 0
    return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), elapsed)
}

/// Runs a command and returns its stdout (for children that report JSON).
func spawnCapturing(_ path: String, _ arguments: [String], stdin: String = "/dev/null") throws -> (status: Int32, output: String, elapsed: Duration) {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("journey-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out").path
    defer { try? FileManager.default.removeItem(atPath: out) }
    let (status, elapsed) = try spawn(path, arguments, stdin: stdin, stdout: out)
    let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    return (status, output, elapsed)
}

/// The first executable named `name` on $PATH.
func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

// MARK: Files

func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}

func removeDatabase(_ path: String) {
    for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
}

/// Copies a (checkpointed) database file, replacing `destination` and its side files, and waits
/// until the copy is on disk (`sync -f`): otherwise the kernel writes the copy back while the
/// timed run that follows writes too (at 1M users, 4.6 GB: `journey batch` right after `cp` took
/// 10.69 s and 11.79 s, after `cp` and `sync` 9.59 s and 10.18 s, its checkpoints twice as long).
func copyDatabase(from source: String, to destination: String) throws {
    removeDatabase(destination)
    let (status, _) = try spawn("/bin/cp", [source, destination])
    guard status == 0 else { throw SpawnError(description: "cp \(source) \(destination) failed (\(status))") }
    if fileSize(source + "-wal") > 0 {
        try spawn("/bin/cp", [source + "-wal", destination + "-wal"])
    }
    let (synced, _) = try spawn("/bin/sync", ["-f", destination])
    guard synced == 0 else { throw SpawnError(description: "sync -f \(destination) failed (\(synced))") }
}

/// A deterministic shuffle with the fixtures' generator.
extension Sequence {
    func shuffled(seed: UInt64) -> [Element] {
        var rng = SplitMix64(seed: seed)
        return shuffled(using: &rng)
    }
}

/// Zipf-distributed ranks over 1...n with exponent `s`, by inverse CDF (binary search).
struct Zipf: Sendable {
    let cdf: [Double]
    init(n: Int, s: Double) {
        var acc = 0.0
        var cdf = [Double](repeating: 0, count: n)
        for k in 1...n {
            acc += 1 / pow(Double(k), s)
            cdf[k - 1] = acc
        }
        self.cdf = cdf.map { $0 / acc }
    }
    /// A rank in 0..<n (0 most popular).
    func sample(_ u: Double) -> Int {
        var lo = 0, hi = cdf.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
