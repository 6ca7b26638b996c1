import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * Write-ahead journal and snapshots in a data directory, so every acknowledged write survives a
 * kill -9 of the server (and, with fsync, a crash of the machine).
 *
 * <p>Files: {@code journal-N.log} and {@code snapshot-N.bson}, both sequences of records
 * {@code [length][crc32][BSON]}. A record says what a document or collection now is (put a whole
 * document, delete an _id, create or drop a collection, add or drop an index), never how it
 * changed, so applying a record twice is harmless. {@code snapshot-N} holds the state at some
 * moment after {@code journal-N} was opened; recovery loads the newest complete snapshot and
 * applies journal N, N+1, ... in order, stopping at a torn record (a write that was never
 * acknowledged).
 *
 * <p>Writes: each change is appended (one write(2)) inside its collection's lock. Before a
 * command's reply is sent, {@link #awaitDurable()} fsyncs the journal up to the end of what had
 * been appended (group commit: one fsync covers every command waiting for it). Without fsync the
 * write(2) before the reply already survives a kill -9 of the server (not a power cut).
 *
 * <p>Compaction: when the journal outgrows both a threshold and the last snapshot, a new journal
 * is opened, a snapshot is written beside it collection by collection (each under its lock), and
 * the older files are deleted; the same runs once at start, so the files do not only grow.
 */
final class Journal implements AutoCloseable {

    private static final Pattern FILE = Pattern.compile("(journal|snapshot)-(\\d+)\\.(log|bson)");

    private final Path dir;
    private final boolean fsync;
    private final long compactAfter;
    private final FileChannel lockFile;
    private final FileLock lock;
    private final Object syncLock = new Object();
    private final AtomicBoolean compacting = new AtomicBoolean();
    private final ExecutorService compactor = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "escrow-journal-compactor");
        t.setDaemon(true);
        return t;
    });

    private Consumer<Consumer<Document>> snapshotSource;
    private FileChannel out;
    private long sequence;
    private long journalBytes;
    private long snapshotBytes;
    private long appended;
    private volatile long durable;
    private boolean paused;
    private long compactions;
    private long compactionFailedAt;  // System.nanoTime() of the last failure, 0 if none

    Journal(Path dir, boolean fsync, long compactAfter) throws IOException {
        this.dir = dir;
        this.fsync = fsync;
        this.compactAfter = compactAfter;
        Files.createDirectories(dir);
        this.lockFile = FileChannel.open(dir.resolve("LOCK"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        this.lock = lockFile.tryLock();
        if (lock == null) {
            throw new IOException("another EscrowMongoServer uses " + dir + " (it holds " + dir.resolve("LOCK") + ")");
        }
    }

    // ------------------------------------------------------------------ records

    static Document put(String ns, Document document) {
        return new Document("o", "put").append("ns", ns).append("d", document);
    }

    static Document delete(String ns, Object id) {
        return new Document("o", "del").append("ns", ns).append("id", id);
    }

    static Document create(String ns) {
        return new Document("o", "create").append("ns", ns);
    }

    static Document index(String ns, Document description) {
        return new Document("o", "index").append("ns", ns).append("d", description);
    }

    static Document dropIndex(String ns, String name) {
        return new Document("o", "dropIndex").append("ns", ns).append("name", name);
    }

    static Document drop(String ns) {
        return new Document("o", "drop").append("ns", ns);
    }

    private static ByteBuffer encode(Document record) {
        ByteBuf bson = Unpooled.buffer();
        BsonEncoder.encodeDocument(record, bson);
        byte[] payload = new byte[bson.readableBytes()];
        bson.readBytes(payload);
        CRC32 crc = new CRC32();
        crc.update(payload);
        ByteBuffer framed = ByteBuffer.allocate(8 + payload.length);
        framed.putInt(payload.length).putInt((int) crc.getValue()).put(payload).flip();
        return framed;
    }

    /** The records of one file, up to the first torn or damaged one. */
    private static long read(Path file, Consumer<Document> sink) throws IOException {
        long records = 0;
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
             DataInputStream data = new DataInputStream(in)) {
            while (true) {
                int length;
                int expected;
                byte[] payload;
                try {
                    length = data.readInt();
                    expected = data.readInt();
                    if (length < 5 || length > 64 << 20) {
                        warn(file + ": a damaged record after " + records + " records; the rest is ignored");
                        return records;
                    }
                    payload = data.readNBytes(length);
                } catch (EOFException end) {
                    return records;
                }
                CRC32 crc = new CRC32();
                crc.update(payload);
                if (payload.length != length || (int) crc.getValue() != expected) {
                    warn(file + ": a torn record after " + records + " records (a write never acknowledged); ignored");
                    return records;
                }
                sink.accept(BsonDecoder.decodeBson(Unpooled.wrappedBuffer(payload)));
                records++;
            }
        }
    }

    // ------------------------------------------------------------------ state rebuilt at start

    /** Collections by namespace as the files describe them: index descriptions and documents. */
    static final class State {
        static final class Collection {
            final Map<String, Document> indexes = new LinkedHashMap<>();
            final Map<KeyValue, Document> documents = new LinkedHashMap<>();
        }

        final Map<String, Collection> collections = new LinkedHashMap<>();
        long records;

        private static KeyValue key(Object id) {
            return new KeyValue(Collections.singletonList(id)).normalized();
        }

        void apply(Document record) {
            records++;
            String ns = (String) record.get("ns");
            switch ((String) record.get("o")) {
                case "create" -> collections.computeIfAbsent(ns, n -> new Collection());
                case "index" -> {
                    Document description = (Document) record.get("d");
                    collections.computeIfAbsent(ns, n -> new Collection()).indexes.put((String) description.get("name"), description);
                }
                case "dropIndex" -> {
                    Collection c = collections.get(ns);
                    if (c != null) {
                        c.indexes.remove((String) record.get("name"));
                    }
                }
                case "put" -> {
                    Document document = (Document) record.get("d");
                    collections.computeIfAbsent(ns, n -> new Collection()).documents.put(key(document.get("_id")), document);
                }
                case "del" -> {
                    Collection c = collections.get(ns);
                    if (c != null) {
                        c.documents.remove(key(record.get("id")));
                    }
                }
                case "drop" -> collections.remove(ns);
                default -> throw new IllegalStateException("unknown journal record " + record);
            }
        }

        long documents() {
            return collections.values().stream().mapToLong(c -> c.documents.size()).sum();
        }
    }

    /** Reads the newest snapshot and the journals after it. */
    State recover() throws IOException {
        TreeMap<Long, Path> journals = new TreeMap<>();
        TreeMap<Long, Path> snapshots = new TreeMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                String name = file.getFileName().toString();
                if (name.endsWith(".tmp")) {
                    Files.delete(file);  // a snapshot cut short: the journals still hold its data
                    continue;
                }
                Matcher m = FILE.matcher(name);
                if (m.matches()) {
                    (m.group(1).equals("journal") ? journals : snapshots).put(Long.parseLong(m.group(2)), file);
                }
            }
        }
        State state = new State();
        long from = 0;
        if (!snapshots.isEmpty()) {
            from = snapshots.lastKey();
            read(snapshots.lastEntry().getValue(), state::apply);
        }
        for (Map.Entry<Long, Path> journal : journals.tailMap(from, true).entrySet()) {
            read(journal.getValue(), state::apply);
        }
        sequence = Math.max(journals.isEmpty() ? 0 : journals.lastKey(), from);
        return state;
    }

    // ------------------------------------------------------------------ writing

    void pause(boolean paused) {
        synchronized (this) {
            this.paused = paused;
        }
    }

    void snapshotSource(Consumer<Consumer<Document>> source) {
        this.snapshotSource = source;
    }

    synchronized void append(Document record) {
        if (paused) {
            return;
        }
        ByteBuffer bytes = encode(record);
        int length = bytes.remaining();
        try {
            while (bytes.hasRemaining()) {
                out.write(bytes);
            }
        } catch (IOException e) {
            fatal("cannot append to the journal", e);
        }
        journalBytes += length;
        appended += length;
        if (journalBytes > compactAfter && journalBytes > snapshotBytes && !retryingTooSoon()
            && compacting.compareAndSet(false, true)) {
            compactor.execute(this::compactInBackground);
        }
    }

    /** Returns once everything appended so far is on disk (at once without fsync: write(2) sufficed). */
    void awaitDurable() {
        if (!fsync) {
            return;
        }
        long target;
        synchronized (this) {
            target = appended;
        }
        if (durable >= target) {
            return;
        }
        synchronized (syncLock) {
            if (durable >= target) {
                return;  // another command's fsync covered this one
            }
            long upTo;
            FileChannel channel;
            synchronized (this) {
                upTo = appended;
                channel = out;
            }
            try {
                channel.force(false);
            } catch (IOException e) {
                fatal("cannot fsync the journal", e);
            }
            durable = upTo;
        }
    }

    /** Opens the next journal (the current one forced and closed); returns its sequence number. */
    private long rotate() throws IOException {
        synchronized (syncLock) {
            synchronized (this) {
                if (out != null) {
                    out.force(true);
                    out.close();
                }
                sequence++;
                out = FileChannel.open(journal(sequence), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND);
                syncDirectory();
                journalBytes = 0;
                durable = appended;
                return sequence;
            }
        }
    }

    private Path journal(long n) {
        return dir.resolve("journal-" + n + ".log");
    }

    private Path snapshot(long n) {
        return dir.resolve("snapshot-" + n + ".bson");
    }

    /** New journal, snapshot of the live data beside it, older files deleted. */
    void compact() throws IOException {
        long n = rotate();
        Path tmp = dir.resolve("snapshot-" + n + ".tmp");
        long bytes;
        try (FileOutputStream file = new FileOutputStream(tmp.toFile());
             OutputStream buffered = new BufferedOutputStream(file, 1 << 16)) {
            long[] written = {0};
            snapshotSource.accept(record -> {
                ByteBuffer framed = encode(record);
                written[0] += framed.remaining();
                try {
                    buffered.write(framed.array(), 0, framed.limit());
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            buffered.flush();
            file.getFD().sync();
            bytes = written[0];
        } catch (java.io.UncheckedIOException e) {
            Files.deleteIfExists(tmp);
            throw e.getCause();
        }
        Files.move(tmp, snapshot(n), StandardCopyOption.ATOMIC_MOVE);
        syncDirectory();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                Matcher m = FILE.matcher(file.getFileName().toString());
                if (m.matches() && Long.parseLong(m.group(2)) < n) {
                    Files.delete(file);
                }
            }
        }
        synchronized (this) {
            snapshotBytes = bytes;
            compactions++;
        }
    }

    /** After a failed compaction, the next attempt waits a minute (each attempt opens a journal). */
    private boolean retryingTooSoon() {
        return compactionFailedAt != 0 && System.nanoTime() - compactionFailedAt < 60_000_000_000L;
    }

    private void compactInBackground() {
        try {
            compact();
        } catch (IOException | RuntimeException e) {
            warn("compaction failed (the journal keeps every write; retried in a minute): " + e);
            synchronized (this) {
                compactionFailedAt = System.nanoTime();
            }
        } finally {
            compacting.set(false);
        }
    }

    private void syncDirectory() throws IOException {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    synchronized Document status() {
        return new Document("dataDir", dir.toString()).append("fsync", fsync)
            .append("journalSequence", sequence).append("journalBytes", journalBytes)
            .append("snapshotBytes", snapshotBytes).append("compactions", compactions);
    }

    @Override
    public void close() {
        compactor.shutdown();
        synchronized (syncLock) {
            synchronized (this) {
                try {
                    if (out != null) {
                        out.force(true);
                        out.close();
                    }
                    lock.release();
                    lockFile.close();
                } catch (IOException e) {
                    warn("closing the journal: " + e);
                }
            }
        }
    }

    private static void warn(String message) {
        System.err.println("EscrowMongoServer: " + message);
    }

    private static void fatal(String message, IOException e) {
        // Fail-stop: the change is in memory but not on disk, so no reply may acknowledge it.
        System.err.println("EscrowMongoServer: FATAL: " + message + ": " + e + "; stopping");
        Runtime.getRuntime().halt(70);
    }
}
