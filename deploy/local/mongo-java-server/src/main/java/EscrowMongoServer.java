import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;

/**
 * The project's MongoDB-wire server: mongo-java-server's memory backend, made
 * <ul>
 * <li>atomic: one lock per collection serialises its writes, so a conditional single-document
 *     update is never applied twice (unlike FerretDB v1);</li>
 * <li>indexed: {@code _id} lookups serve filters with more keys ({@code {_id, version}}), and the
 *     non-unique indexes the services declare are built and used ({@link EscrowCollection});</li>
 * <li>persistent with {@code --data-dir}: a write-ahead journal and snapshots ({@link Journal}).</li>
 * </ul>
 *
 * <pre>java -cp 'libs/*' EscrowMongoServer PORT [HOST] [--data-dir DIR] [--no-fsync] [--compact-after BYTES]</pre>
 *
 * <ul>
 * <li>no {@code --data-dir}: memory only, gone when the process stops;</li>
 * <li>{@code --data-dir DIR}: every acknowledged write is in DIR's journal and fsynced before
 *     the reply (group commit); it survives kill -9 and a machine crash;</li>
 * <li>{@code --no-fsync}: written to the OS before the reply, not fsynced: survives kill -9 of the
 *     server, not a power cut or kernel crash;</li>
 * <li>{@code --compact-after BYTES} (default 64 MiB): the journal size past which (and past the
 *     last snapshot's size) a new snapshot replaces the older files.</li>
 * </ul>
 */
public final class EscrowMongoServer {

    /**
     * What the handshake reports. The library's newest choice (ServerVersion.MONGO_5_0) says wire
     * version 8, which PyMongo 4.14 and later refuse (they need 9, MongoDB 4.4). 4.4 is the oldest
     * version they accept, so PyMongo assumes no newer server feature than it must.
     */
    static final MongoVersion REPORTED_VERSION = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    private static final String USAGE = "usage: EscrowMongoServer PORT [HOST] [--data-dir DIR] [--no-fsync]"
        + " [--compact-after BYTES]   (HOST defaults to 127.0.0.1; no --data-dir: memory only)";

    private EscrowMongoServer() {
    }

    private static void usage(String problem) {
        System.err.println("EscrowMongoServer: " + problem);
        System.err.println(USAGE);
        System.exit(64);
    }

    public static void main(String[] args) throws Exception {
        Integer port = null;
        String host = "127.0.0.1";
        Path dataDir = null;
        boolean fsync = true;
        long compactAfter = 64L << 20;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--data-dir" -> {
                    if (++i == args.length || args[i].isEmpty()) {
                        usage("--data-dir needs a directory");
                    }
                    dataDir = Path.of(args[i]).toAbsolutePath();
                }
                case "--no-fsync" -> fsync = false;
                case "--fsync" -> fsync = true;
                case "--compact-after" -> {
                    if (++i == args.length || !args[i].matches("[0-9]{1,15}")) {
                        usage("--compact-after needs a number of bytes");
                    }
                    compactAfter = Long.parseLong(args[i]);
                }
                default -> {
                    if (port == null && arg.matches("[0-9]{1,5}")) {
                        port = Integer.parseInt(arg);
                    } else if (port != null && !arg.startsWith("-") && host.equals("127.0.0.1")) {
                        host = arg;
                    } else {
                        usage("unexpected argument '" + arg + "'");
                    }
                }
            }
        }
        if (port == null) {
            usage("PORT is missing");
        }
        // The library logs every connection at INFO; warnings and errors are what matter here.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }

        Journal journal = dataDir == null ? null : new Journal(dataDir, fsync, compactAfter);
        EscrowBackend backend = new EscrowBackend(journal);
        backend.version(REPORTED_VERSION);
        String storage = "memory only";
        if (journal != null) {
            long started = System.nanoTime();
            Journal.State state = journal.recover();
            journal.pause(true);
            backend.restore(state);
            journal.pause(false);
            journal.snapshotSource(backend::snapshot);
            journal.compact();
            storage = String.format("data in %s (%s), recovered %d documents in %d collections from %d records in %d ms",
                dataDir, fsync ? "fsync before each reply" : "no fsync: survives kill -9, not a power cut",
                state.documents(), state.collections.size(), state.records, (System.nanoTime() - started) / 1_000_000);
        }

        MongoServer server = new MongoServer(backend);
        // Replies wait for the journal's fsync on the event-loop thread: more threads keep other
        // connections served meanwhile.
        int workers = journal != null && fsync ? 16 : 0;
        server.bind(new InetSocketAddress(host, port), 1, workers);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            if (journal != null) {
                journal.close();
            }
        }, "escrow-mongo-shutdown"));
        System.out.printf("EscrowMongoServer: mongo-java-server 1.47 (memory backend, indexed) listening on %s:%d,"
                + " reporting MongoDB %s (wire version %d); %s%n",
            host, port, REPORTED_VERSION.toVersionString(), REPORTED_VERSION.getWireVersion(), storage);
        // Netty's event-loop threads are not daemons: they keep the JVM running until SIGTERM.
    }
}
