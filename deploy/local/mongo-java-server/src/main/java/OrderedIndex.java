import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.bson.Document;

/**
 * A non-unique index, which the library only accepts and ignores: the values of the index's first
 * key, in BSON order, each to the documents (by _id) that hold it. Null and missing values sit apart,
 * so a range with a non-null bound never visits them (a range never matches null in MongoDB).
 * A compound index is kept on its first key: the query matcher checks the rest.
 *
 * Only {@link EscrowCollection}'s planner reads it; the library's own planner is told it can
 * handle nothing. It is guarded by its collection's lock, like the collection's documents.
 */
final class OrderedIndex extends Index<Integer> {

    private final String key;
    private final NavigableMap<Object, Map<KeyValue, Integer>> values = new TreeMap<>(ValueComparator.asc());
    private final Map<KeyValue, Integer> nulls = new LinkedHashMap<>();
    private long count;

    OrderedIndex(String name, List<IndexKey> keys) {
        super(name, keys, false);
        this.key = keys.get(0).getKey();
    }

    String key() {
        return key;
    }

    /** The normalized values a document holds under the key: one per array element. */
    private List<Object> valuesOf(Document document) {
        Object value = Utils.getSubdocumentValueCollectionAware(document, key);
        if (value instanceof Collection<?> elements && !elements.isEmpty()) {
            List<Object> found = new ArrayList<>();
            for (Object element : elements) {
                Object normalized = normalize(element);
                if (!found.contains(normalized)) {
                    found.add(normalized);
                }
            }
            return found;
        }
        return Collections.singletonList(value instanceof Collection ? null : normalize(value));
    }

    static Object normalize(Object value) {
        return new KeyValue(Collections.singletonList(value)).normalized().get(0);
    }

    private static KeyValue idOf(Document document) {
        return new KeyValue(Collections.singletonList(document.get("_id"))).normalized();
    }

    private Map<KeyValue, Integer> bucket(Object value, boolean create) {
        if (value == null) {
            return nulls;
        }
        return create ? values.computeIfAbsent(value, v -> new LinkedHashMap<>()) : values.get(value);
    }

    @Override
    public void add(Document document, Integer position, MongoCollection<Integer> collection) {
        KeyValue id = idOf(document);
        for (Object value : valuesOf(document)) {
            bucket(value, true).put(id, position);
        }
        count++;
    }

    @Override
    public Integer remove(Document document) {
        KeyValue id = idOf(document);
        Integer position = null;
        for (Object value : valuesOf(document)) {
            Map<KeyValue, Integer> bucket = bucket(value, false);
            if (bucket == null) {
                continue;
            }
            Integer removed = bucket.remove(id);
            if (removed != null) {
                position = removed;
            }
            if (bucket.isEmpty() && value != null) {
                values.remove(value);
            }
        }
        if (position != null) {
            count--;
        }
        return position;
    }

    @Override
    public void updateInPlace(Document oldDocument, Document newDocument, Integer position,
                              MongoCollection<Integer> collection) {
        if (!valuesOf(oldDocument).equals(valuesOf(newDocument))) {
            remove(oldDocument);
            add(newDocument, position, collection);
        }
    }

    /** Positions of the documents whose value equals {@code value} (null: null or missing). */
    Stream<Integer> equal(Object value) {
        Map<KeyValue, Integer> bucket = bucket(value, false);
        return bucket == null ? Stream.empty() : bucket.values().stream();
    }

    /**
     * Positions of the documents whose value lies between the bounds (null: unbounded), in the
     * index's order or its reverse; never those holding null or nothing.
     */
    Stream<Integer> range(Object low, boolean lowInclusive, Object high, boolean highInclusive, boolean descending) {
        NavigableMap<Object, Map<KeyValue, Integer>> part = values;
        if (low != null && high != null) {
            if (ValueComparator.asc().compare(low, high) > 0) {
                return Stream.empty();
            }
            part = part.subMap(low, lowInclusive, high, highInclusive);
        } else if (low != null) {
            part = part.tailMap(low, lowInclusive);
        } else if (high != null) {
            part = part.headMap(high, highInclusive);
        }
        Collection<Map<KeyValue, Integer>> buckets = descending ? part.descendingMap().values() : part.values();
        return buckets.stream().flatMap(bucket -> bucket.values().stream());
    }

    @Override
    public Integer getPosition(Document document) {
        return null;  // the _id index answers where a document is
    }

    @Override
    public void checkAdd(Document document, MongoCollection<Integer> collection) {
        // not unique: nothing to check
    }

    @Override
    public void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<Integer> collection) {
        // not unique: nothing to check
    }

    @Override
    public boolean canHandle(Document query) {
        return false;  // EscrowCollection plans queries on this index itself
    }

    @Override
    public Iterable<Integer> getPositions(Document query) {
        throw new UnsupportedOperationException("planned by EscrowCollection");
    }

    @Override
    public long getCount() {
        return count;
    }

    @Override
    public long getDataSize() {
        return count;
    }

    @Override
    public void drop() {
        values.clear();
        nulls.clear();
        count = 0;
    }
}
