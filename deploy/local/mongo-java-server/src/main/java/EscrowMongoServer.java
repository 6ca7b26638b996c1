import java.util.List;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

/**
 * mongo-java-server with its in-memory backend on HOST:PORT (default host 127.0.0.1), for tests
 * that need MongoDB's single-document atomicity: the backend serialises every write to a
 * collection, so a conditional update is never applied twice, as in MongoDB and unlike FerretDB v1.
 *
 * <pre>java -cp 'libs/*' EscrowMongoServer PORT [HOST]</pre>
 *
 * The data lives in memory only and is gone when the process stops.
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

    private EscrowMongoServer() {
    }

    public static void main(String[] args) {
        if (args.length < 1 || args.length > 2 || !args[0].matches("[0-9]{1,5}")) {
            System.err.println("usage: EscrowMongoServer PORT [HOST]   (HOST defaults to 127.0.0.1)");
            System.exit(64);
        }
        int port = Integer.parseInt(args[0]);
        String host = args.length == 2 ? args[1] : "127.0.0.1";
        // The library logs every connection at INFO; warnings and errors are what matter here.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }

        MongoServer server = new MongoServer(new MemoryBackend().version(REPORTED_VERSION));
        server.bind(host, port);
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow, "escrow-mongo-shutdown"));
        System.out.printf("EscrowMongoServer: mongo-java-server (memory backend) listening on %s:%d,"
                + " reporting MongoDB %s (wire version %d)%n",
            host, port, REPORTED_VERSION.toVersionString(), REPORTED_VERSION.getWireVersion());
        // Netty's event-loop threads are not daemons: they keep the JVM running until SIGTERM.
    }
}
