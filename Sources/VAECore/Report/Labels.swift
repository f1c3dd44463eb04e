import Foundation

/// Class labels for a data set, used only to colour the 2-D latent scatter: the IDX labels file that
/// MNIST-style data keeps beside its images (`…-images-idx3-ubyte` → `…-labels-idx1-ubyte`).
public enum Labels {
    /// The labels file next to a data file, when one exists.
    public static func file(nextTo dataPath: String) -> String? {
        let directory = (dataPath as NSString).deletingLastPathComponent
        let name = (dataPath as NSString).lastPathComponent
        guard name.contains("images") else { return nil }
        let labelsName = name.replacingOccurrences(of: "images", with: "labels").replacingOccurrences(of: "idx3", with: "idx1")
        let path = directory.isEmpty ? labelsName : (directory as NSString).appendingPathComponent(labelsName)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// One whole-number label per example; `count` must match the data set's.
    public static func read(path: String, count: Int) throws -> [Int] {
        let file = try IDXFile.read(path: path)
        guard file.dims == [count] else {
            throw FormatError(path: path, problem: "holds labels of shape \(file.dims), but the data set beside it has \(count) examples")
        }
        guard file.values.allSatisfy({ $0 >= 0 && $0 < 1000 && $0 == $0.rounded() }) else {
            throw FormatError(path: path, problem: "holds values that are not class labels (whole numbers from 0 to 999)")
        }
        return file.values.map { Int($0) }
    }

    /// The labels for a data set when a labels file sits beside it, and a note when that file cannot
    /// be used (the scatter is then drawn in one colour; a report is not refused for it).
    public static func forData(_ data: Dataset) -> (labels: [Int]?, note: String?) {
        guard let path = file(nextTo: data.path) else { return (nil, nil) }
        do { return (try read(path: path, count: data.count), nil) } catch { return (nil, "\(error)") }
    }
}
