/**
 * Worker entry of the annotator's second thread (two threads, BGZF output): reads and cuts
 * the VCF, compresses and writes the output, while the other thread annotates (see
 * src/annotate/aside.ts).
 */
export { runAside as default } from '../src/annotate/aside.js';
